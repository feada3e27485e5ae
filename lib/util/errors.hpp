// The few exception types that end a command. Each maps to one exit code of the contract, in
// one place only (cli/runner.cpp); library code throws the type that says what went wrong and
// never picks a number itself.
#pragma once

#include <stdexcept>
#include <string>

namespace workq {

// The operation failed (exit 1): an unknown id, a refused transition, a job that went dead.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The user asked for something malformed (exit 2): a flag, a name, a duration, a URL, a config
// file, a payload over the limit. Thrown before anything is sent to the server.
struct UsageError : Error {
    using Error::Error;
};

// The server cannot be reached or did not answer as Redis does (exit 3).
struct RedisError : Error {
    using Error::Error;
};

// workq-work itself cannot go on (exit 4): a failed on-start hook, a COMMAND that cannot be
// executed, a broken invariant of the worker.
struct FatalError : Error {
    using Error::Error;
};

}  // namespace workq
