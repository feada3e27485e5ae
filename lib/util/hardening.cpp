#include "util/hardening.hpp"

#include <sys/prctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

extern char** environ;

namespace workq {

bool make_undumpable() {
    return ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
}

void erase_environment_variable(std::string_view name) {
    std::vector<std::pair<char*, std::size_t>> entries;
    for (char** entry = environ; entry && *entry; ++entry) {
        std::string_view text = *entry;
        if (text.size() > name.size() && text.starts_with(name) && text[name.size()] == '=')
            entries.emplace_back(*entry, text.size());
    }
    if (entries.empty()) return;
    // First out of `environ` (unsetenv compares names, which the overwrite destroys), then the
    // bytes, wherever they are: on the initial stack, or on the heap after a setenv().
    ::unsetenv(std::string(name).c_str());
    for (auto [text, size] : entries)
        std::memset(text, 0, size);
}

bool replace_command_line(char** argv, std::string_view shown) {
    if (!argv || !argv[0]) return false;
    char* start = argv[0];
    char* end = argv[0] + std::strlen(argv[0]) + 1;
    for (char** arg = argv + 1; *arg; ++arg) {
        if (*arg != end) return false;  // not the kernel's layout: leave it alone
        end += std::strlen(*arg) + 1;
    }
    auto area = static_cast<std::size_t>(end - start);
    if (area < 2) return false;
    // Room for the text, a NUL after it, and the non-NUL last byte.
    auto length = std::min(shown.size(), area - 2);
    std::memset(start, 0, area);
    std::memcpy(start, shown.data(), length);
    // The kernel shows the area up to its first NUL when the area's last byte is not NUL (the
    // setproctitle convention; fs/proc/base.c, get_mm_cmdline). Without it, the NULs we wrote
    // would show, and their count would give the length of what we hid.
    start[area - 1] = ' ';
    return true;
}

std::error_code make_private_directories(const std::filesystem::path& dir) {
    std::filesystem::path level;
    for (const auto& part : dir) {
        level /= part;
        if (::mkdir(level.c_str(), 0700) != 0 && errno != EEXIST)
            return {errno, std::generic_category()};
    }
    std::error_code error;
    if (!std::filesystem::is_directory(dir, error) && !error)
        error = std::make_error_code(std::errc::not_a_directory);
    return error;
}

namespace {
std::optional<rlim_t> started_soft_limit;  // set by the first raise
}  // namespace

std::optional<rlim_t> original_soft_fd_limit() {
    return started_soft_limit;
}

FdLimits raise_fd_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
    if (limit.rlim_cur < limit.rlim_max) {
        if (!started_soft_limit) started_soft_limit = limit.rlim_cur;
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    return {limit.rlim_cur, limit.rlim_max};
}

}  // namespace workq
