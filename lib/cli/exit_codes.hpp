// The contract's exit codes (CONTRACT.md section 8), shared by every tool and its --help.
#pragma once

namespace workq {

enum class ExitCode : int {
    success = 0,
    failed = 1,         // the operation failed, or some of its items did
    usage = 2,          // bad flag, name, id, duration, URL, config file, payload over the limit
    redis = 3,          // cannot reach or talk to Redis
    worker_fatal = 4,   // workq-work itself failed
    wait_timeout = 124  // --wait-timeout passed
};

constexpr int to_int(ExitCode code) {
    return static_cast<int>(code);
}

// The "Exit status" section shared by every tool's --help.
inline constexpr const char* exit_status_help =
    "Exit status:\n"
    "  0    success\n"
    "  1    the operation failed, or some of its items did (e.g. an unknown id)\n"
    "  2    usage error: bad flag, queue name, id, duration, URL, config file, oversize payload\n"
    "  3    cannot reach or talk to Redis\n";

}  // namespace workq
