// What a workq process does to keep the Redis password to itself, and to have the descriptors
// it needs. A worker runs for weeks next to the handlers it starts, which run as the same user:
// without this, one read of /proc/<worker pid>/environ or /cmdline would give them the
// password (issue 23).
#pragma once

#include <sys/resource.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace workq {

// PR_SET_DUMPABLE 0: no core dump (which would hold the password), no ptrace by processes of
// the same user, and /proc/<pid>/environ, mem and fd readable by root only. A child gets a
// dumpable process again at exec, so handlers are unaffected. Returns false if the kernel
// refused.
bool make_undumpable();

// Removes NAME from the environment and overwrites the bytes of its entry with NULs where they
// lie: /proc/<pid>/environ shows the memory the process started with, not `environ`, so
// unsetenv() alone would leave the value readable there. Does nothing when NAME is not set.
void erase_environment_variable(std::string_view name);

// Replaces what /proc/<pid>/cmdline (ps, top, pgrep -f) shows by `shown`, setproctitle's way:
// the whole argument area is overwritten, `shown` and then NULs, and its last byte is made
// non-NUL, which makes the kernel show the text up to its first NUL. So nothing of the old
// arguments is left, not even their lengths. `shown` is cut to fit the area. Needs the original
// argv (contiguous strings, NULL-terminated array); returns false, touching nothing, when it is
// not. The strings argv points to are changed: parse a copy.
bool replace_command_line(char** argv, std::string_view shown);

// Makes `dir` and each missing parent with mode 0700 (mkdir's mode, so there is no moment when
// another user could look in). Returns the error of the first level that could not be made, or
// not_a_directory when `dir` exists as something else.
std::error_code make_private_directories(const std::filesystem::path& dir);

// The limits on open descriptors, after raising the soft one to the hard one (each handler
// holds pipes; a 1024 soft limit, the usual default, runs out near -c 300). Zeros when the
// kernel does not say.
struct FdLimits {
    rlim_t soft = 0;
    rlim_t hard = 0;
};
FdLimits raise_fd_limit();

// The soft limit the process had before its first raise_fd_limit(), or nullopt when it never
// raised it. Children get it back before exec (util/process.cpp): programs that use select()
// break above 1024 descriptors, so the raise is for the worker alone, as systemd advises.
std::optional<rlim_t> original_soft_fd_limit();

}  // namespace workq
