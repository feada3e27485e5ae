#include "util/cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <vector>

#include "util/read_file.hpp"

namespace workq {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    while (true) {
        auto at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos) return parts;
        text.remove_prefix(at + 1);
    }
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo (octal).
std::string unescape_mount_path(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 3 < text.size()) {
            int value = 0;
            bool octal = true;
            for (std::size_t k = 1; k <= 3; ++k) {
                char c = text[i + k];
                if (c < '0' || c > '7') octal = false;
                value = value * 8 + (c - '0');
            }
            if (octal) {
                out += static_cast<char>(value);
                i += 3;
                continue;
            }
        }
        out += text[i];
    }
    return out;
}

// Bounded: these files are small; a mountinfo of thousands of mounts is still well below it.
constexpr std::size_t proc_file_limit = 4 << 20;

// Appends `text` to `buffer` (of `size` bytes, NUL-terminated) at `length`; false when it does
// not fit. For the guard: no allocation.
bool append(char* buffer, std::size_t size, std::size_t& length, const char* text) {
    std::size_t add = std::strlen(text);
    if (length + add + 1 > size) return false;
    std::memcpy(buffer + length, text, add + 1);
    length += add;
    return true;
}

bool write_text(const char* path, const char* text) {
    int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t wrote = ::write(fd, text, std::strlen(text));
    ::close(fd);
    return wrote == static_cast<ssize_t>(std::strlen(text));
}

void nap_ms(long ms) {
    timespec delay{0, ms * 1000 * 1000};
    while (::nanosleep(&delay, &delay) != 0 && errno == EINTR) {
    }
}

}  // namespace

std::optional<CgroupLocation> locate_cgroup_v2(std::string_view proc_cgroup,
                                               std::string_view mountinfo) {
    std::optional<std::string> relative;
    for (auto line : split(proc_cgroup, '\n'))
        if (line.starts_with("0::")) relative = std::string(line.substr(3));
    if (!relative || relative->empty() || relative->front() != '/') return std::nullopt;
    // A cgroup that was removed under us reads "/path (deleted)".
    if (relative->ends_with(" (deleted)")) return std::nullopt;
    for (auto line : split(mountinfo, '\n')) {
        auto separator = line.find(" - ");
        if (separator == std::string_view::npos) continue;
        auto after = split(line.substr(separator + 3), ' ');
        if (after.empty() || after[0] != "cgroup2") continue;
        auto before = split(line.substr(0, separator), ' ');
        if (before.size() < 5) continue;
        auto root = unescape_mount_path(before[3]);
        auto mount_point = unescape_mount_path(before[4]);
        std::string inside;
        if (root == "/") {
            inside = *relative;
        } else if (*relative == root) {
            inside = "/";
        } else if (relative->starts_with(root + "/")) {
            inside = relative->substr(root.size());
        } else {
            continue;  // this mount shows another part of the hierarchy
        }
        CgroupLocation location;
        location.relative = *relative;
        location.dir = inside == "/" ? mount_point : mount_point + inside;
        return location;
    }
    return std::nullopt;
}

std::optional<HandlerCgroup> HandlerCgroup::create(const std::string& name, std::string& why) {
    auto cgroup = read_bounded("/proc/self/cgroup", proc_file_limit);
    auto mounts = read_bounded("/proc/self/mountinfo", proc_file_limit);
    if (cgroup.status != BoundedRead::Status::ok || mounts.status != BoundedRead::Status::ok) {
        why = "/proc/self/cgroup or /proc/self/mountinfo cannot be read";
        return std::nullopt;
    }
    auto where = locate_cgroup_v2(cgroup.text, mounts.text);
    if (!where) {
        why = "no cgroup v2 holds the worker";
        return std::nullopt;
    }
    // The root of a hierarchy is the whole machine's (or the whole container's): never divided
    // by a worker that merely runs there.
    if (where->relative == "/") {
        why = fmt::format("the worker runs in the root cgroup ({})", where->dir);
        return std::nullopt;
    }
    // Moving a process between two cgroups takes write access to cgroup.procs of their common
    // ancestor: the worker's own.
    auto own_procs = where->dir + "/cgroup.procs";
    if (::access(own_procs.c_str(), W_OK) != 0) {
        why = fmt::format("{} is not writable ({}): the cgroup is not delegated to the worker",
                          own_procs, std::strerror(errno));
        return std::nullopt;
    }
    auto dir = where->dir + "/" + name;
    if (::mkdir(dir.c_str(), 0755) != 0) {
        why = fmt::format("cannot create {}: {}", dir, std::strerror(errno));
        return std::nullopt;
    }
    UniqueFd procs(::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs.valid()) {
        why = fmt::format("cannot open {}/cgroup.procs: {}", dir, std::strerror(errno));
        ::rmdir(dir.c_str());
        return std::nullopt;
    }
    return HandlerCgroup(std::move(dir), std::move(procs));
}

HandlerCgroup::~HandlerCgroup() {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
}

bool kill_cgroup(const char* dir) {
    char path[4096];
    std::size_t base = 0;
    if (!append(path, sizeof path, base, dir)) return false;
    auto at = [&](const char* leaf) {
        std::size_t length = base;
        path[length] = '\0';
        append(path, sizeof path, length, leaf);
        return path;
    };
    // cgroup.kill (Linux 5.14) kills every process in it, new forks included, in one step.
    if (!write_text(at("/cgroup.kill"), "1")) {
        // Older kernels: freeze it (no forks while we read), then kill what it lists, until
        // it lists nothing. SIGKILL ends a frozen process.
        write_text(at("/cgroup.freeze"), "1");
        for (int pass = 0; pass < 100; ++pass) {
            int fd = ::open(at("/cgroup.procs"), O_RDONLY | O_CLOEXEC);
            if (fd < 0) break;
            char buffer[4096];
            bool any = false;
            long pid = 0;
            bool in_number = false;
            for (;;) {
                ssize_t got = ::read(fd, buffer, sizeof buffer);
                if (got < 0 && errno == EINTR) continue;
                if (got <= 0) break;
                for (ssize_t i = 0; i < got; ++i) {
                    char c = buffer[i];
                    if (c >= '0' && c <= '9') {
                        pid = pid * 10 + (c - '0');
                        in_number = true;
                    } else {
                        if (in_number && pid > 1) {
                            ::kill(static_cast<pid_t>(pid), SIGKILL);
                            any = true;
                        }
                        pid = 0;
                        in_number = false;
                    }
                }
            }
            if (in_number && pid > 1) {
                ::kill(static_cast<pid_t>(pid), SIGKILL);
                any = true;
            }
            ::close(fd);
            if (!any) break;
            nap_ms(10);
        }
    }
    // A cgroup can be removed once its processes have exited (zombies no longer count).
    path[base] = '\0';
    for (int attempt = 0; attempt < 200; ++attempt) {
        if (::rmdir(path) == 0 || errno == ENOENT) return true;
        if (errno != EBUSY) return false;
        nap_ms(10);
    }
    return false;
}

}  // namespace workq
