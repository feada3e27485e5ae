// The one place that turns errors into exit codes. Each tool's main() is a single call:
//   int main(int argc, char** argv) { return workq::cli::run("workq-dlq", argc, argv, dlq_main); }
#pragma once

#include <string_view>

namespace workq::cli {

using ToolMain = int (*)(int argc, char** argv);

// Runs `tool` and maps what escapes it: CLI11's parse errors and UsageError to 2 (help and
// --version to 0), RedisError to 3, FatalError to 4, any other error to 1, each printed as
// "<program>: error: <message>". Nothing reaches std::terminate.
int run(std::string_view program, int argc, char** argv, ToolMain tool);

// Whether descriptor `fd` (0, 1 or 2) was closed when the tool started (`>&-`): run() gave it
// /dev/null the wrong way round, so using it fails. A tool whose output would be lost (the ids
// of jobs it makes) asks before it does anything.
bool was_closed_at_start(int fd);

}  // namespace workq::cli
