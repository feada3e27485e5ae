#include "cli/runner.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "util/errors.hpp"
#include "util/hardening.hpp"
#include "util/log.hpp"

namespace workq::cli {
namespace {

// A tool started with stdin, stdout or stderr closed (`workq-enqueue q >&-`) would get that
// descriptor for its Redis socket, and then write ids to Redis as commands, or read its own
// connection as input. A closed stdin or stdout gets /dev/null opened the wrong way round: the
// descriptor is taken, and using it still fails (EBADF), reported as any tool would. A closed
// stderr gets /dev/null for writing: diagnostics go nowhere, as the caller asked.
bool closed_at_start[3] = {false, false, false};

void occupy_closed_std_descriptors() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        closed_at_start[fd] = true;
        int opened = open("/dev/null", fd == 1 ? O_RDONLY : O_WRONLY);
        if (opened >= 0 && opened != fd) {
            dup2(opened, fd);
            close(opened);
        }
    }
}

}  // namespace

bool was_closed_at_start(int fd) {
    return fd >= 0 && fd <= 2 && closed_at_start[fd];
}

int run(std::string_view program, int argc, char** argv, ToolMain tool) {
    occupy_closed_std_descriptors();
    // Not dumpable: no core file holding the password, and the worker's handlers (the same
    // user) cannot read its memory or /proc/<pid>/environ.
    make_undumpable();
    // The tool parses a copy that lives as long as it runs (the worker parses it again on
    // SIGHUP): the strings of argv itself are rewritten to hide a --redis password.
    std::vector<std::string> arguments(argv, argv + argc);
    std::vector<char*> copy;
    copy.reserve(arguments.size() + 1);
    for (auto& argument : arguments)
        copy.push_back(argument.data());
    copy.push_back(nullptr);
    hide_passwords_in_argv(argv);
    log::configure(program, log::Level::info, log::Format::human);
    // A server that goes away mid-write must be an error we report (exit 3), not a silent
    // death by SIGPIPE; stdout's reader going away is handled where stdout is written.
    ignore_sigpipe();
    try {
        int code = tool(argc, copy.data());
        flush_stdout();  // a write error (a full disk) must not pass for success
        return code;
    } catch (const HelpRequested& help) {
        // --help and --version are the data the user asked for: stdout.
        std::fputs(help.text.c_str(), stdout);
        return to_int(ExitCode::success);
    } catch (const CLI::ParseError& error) {
        log::error(fmt::format("{} (see {} --help)", error.what(), program));
        return to_int(ExitCode::usage);
    } catch (const UsageError& error) {
        log::error(error.what());
        return to_int(ExitCode::usage);
    } catch (const RedisError& error) {
        log::error(error.what());
        return to_int(ExitCode::redis);
    } catch (const FatalError& error) {
        log::error(error.what());
        return to_int(ExitCode::worker_fatal);
    } catch (const Error& error) {
        log::error(error.what());
        return to_int(ExitCode::failed);
    } catch (const std::exception& error) {
        log::error(fmt::format("internal error: {}", error.what()));
        return to_int(ExitCode::failed);
    } catch (...) {
        log::error("internal error");
        return to_int(ExitCode::failed);
    }
}

}  // namespace workq::cli
