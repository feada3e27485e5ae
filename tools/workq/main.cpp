// workq SUB ARGS...: executes workq-SUB ARGS... in place (same pid, so signals and exit codes
// are the tool's own), found beside this binary first, then on PATH.
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/exit_codes.hpp"
#include "cli/runner.hpp"
#include "util/errors.hpp"
#include "util/names.hpp"

namespace {

constexpr const char* usage =
    "workq - reliable job queues on Redis for the shell\n"
    "\n"
    "Usage: workq COMMAND [ARGS...]   (runs workq-COMMAND ARGS...)\n"
    "\n"
    "Commands:\n"
    "  enqueue   submit jobs (arguments or stdin lines); prints their ids\n"
    "  work      run a worker: a handler command per job, retries, dead letters\n"
    "  queue     list, cancel and purge live jobs; pause and resume a queue\n"
    "  dlq       inspect, requeue and delete dead letters\n"
    "  status    queue depth, latency, worker health, one job's state\n"
    "  schedule  periodic jobs from cron expressions, one job per tick across a fleet\n"
    "\n"
    "Each command has --help with examples (workq help COMMAND). See workq(7).\n"
    "\n"
    "Examples:\n"
    "  workq enqueue mail < addresses.txt\n"
    "  workq work --burst mail -- ./send-mail\n"
    "  workq status\n";

// A command is a word: a letter first, then letters, digits and dashes.
bool is_command_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || !(name[0] >= 'a' && name[0] <= 'z')) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return true;
}

int front_door(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(usage, stderr);
        return workq::to_int(workq::ExitCode::usage);
    }
    std::string sub = argv[1];
    std::vector<char*> args(argv + 1, argv + argc);
    // `workq help COMMAND` is `workq-COMMAND --help`, as git does it.
    static char help_flag[] = "--help";
    if (sub == "help" && argc >= 3) {
        sub = argv[2];
        args = {argv[2], help_flag};
    } else if (sub == "--help" || sub == "-h" || sub == "help") {
        std::fputs(usage, stdout);
        return 0;
    }
    if (sub == "--version") {
        std::printf("workq %s\n", WORKQ_VERSION);
        return 0;
    }
    if (sub.starts_with("-"))
        throw workq::UsageError(fmt::format(
            "unknown option '{}': workq itself takes only --help and --version; a command's "
            "options go after the command (workq COMMAND --help)",
            workq::printable(sub)));
    if (!is_command_name(sub))
        throw workq::UsageError(
            fmt::format("unknown command '{}' (see workq --help)", workq::printable(sub)));
    std::string program = "workq-" + sub;
    args[0] = program.data();
    args.push_back(nullptr);

    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        auto beside = self.parent_path() / program;
        ::execv(beside.c_str(), args.data());
    }
    ::execvp(program.c_str(), args.data());
    if (errno == ENOENT)
        throw workq::UsageError(
            fmt::format("unknown command '{}' (see workq --help for the commands; no {} beside "
                        "{} or on PATH)",
                        sub, program, self.parent_path().string()));
    throw workq::Error(fmt::format("cannot run {}: {}", program, std::strerror(errno)));
}

}  // namespace

int main(int argc, char** argv) {
    return workq::cli::run("workq", argc, argv, front_door);
}
