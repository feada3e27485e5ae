#include "util/process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "util/cgroup.hpp"
#include "util/errors.hpp"
#include "util/hardening.hpp"

namespace workq {
namespace {

// Writes "<sign><number>\n" without allocating (safe in a child before exec).
void write_group_message(int fd, char sign, pid_t group) {
    char buffer[32];
    int length = 0;
    char digits[20];
    int count = 0;
    auto value = static_cast<unsigned long>(group);
    do {
        digits[count++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value > 0 && count < 20);
    buffer[length++] = sign;
    while (count > 0)
        buffer[length++] = digits[--count];
    buffer[length++] = '\n';
    ssize_t ignored = ::write(fd, buffer, static_cast<size_t>(length));
    (void)ignored;
}

// Blocks every signal for its lifetime. Around fork and clone: until the child has put the
// dispositions back to default, a signal would run the parent's handler in the child, and asio's
// handler writes to the self-pipe the child shares with the worker (a SIGINT meant for the worker's
// group would then arrive twice, and a second SIGINT skips the drain).
class SignalBlock {
  public:
    SignalBlock() {
        sigset_t all;
        sigfillset(&all);
        ::sigprocmask(SIG_SETMASK, &all, &saved_);
    }
    ~SignalBlock() { ::sigprocmask(SIG_SETMASK, &saved_, nullptr); }
    SignalBlock(const SignalBlock&) = delete;
    SignalBlock& operator=(const SignalBlock&) = delete;

  private:
    sigset_t saved_;
};

bool ignored_by_guard(int signal_number) {
    for (int ignored :
         {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE, SIGUSR1, SIGUSR2})
        if (signal_number == ignored) return true;
    return false;
}

// A growable table of pids for the guard. It grows by mmap, not malloc: the guard is a child
// forked from a threaded process, where malloc's locks may be held forever.
// Lookups are binary searches once sorted (the sweep of a worker with -c 10,000 looks up every
// process of the machine in it, pass after pass).
class PidTable {
  public:
    bool contains(pid_t pid) const {
        if (sorted_) return std::binary_search(items_, items_ + used_, pid);
        for (std::size_t i = 0; i < used_; ++i)
            if (items_[i] == pid) return true;
        return false;
    }
    // False when the table cannot grow (out of memory).
    bool add(pid_t pid) {
        if (used_ == capacity_ && !grow()) return false;
        if (!sorted_) {
            items_[used_++] = pid;
            return true;
        }
        pid_t* at = std::lower_bound(items_, items_ + used_, pid);
        std::memmove(at + 1, at, static_cast<std::size_t>(items_ + used_ - at) * sizeof(pid_t));
        *at = pid;
        ++used_;
        return true;
    }
    // Sorts it (duplicates kept); from now on add() keeps it sorted and remove_one() is unused.
    void sort() {
        std::sort(items_, items_ + used_);
        sorted_ = true;
    }
    void remove_one(pid_t pid) {
        for (std::size_t i = 0; i < used_; ++i)
            if (items_[i] == pid) {
                items_[i] = items_[--used_];
                return;
            }
    }
    std::size_t size() const { return used_; }
    pid_t operator[](std::size_t i) const { return items_[i]; }

  private:
    bool grow() {
        std::size_t bigger = capacity_ == 0 ? 1024 : capacity_ * 2;
        void* memory = ::mmap(nullptr, bigger * sizeof(pid_t), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) return false;
        auto* table = static_cast<pid_t*>(memory);
        for (std::size_t i = 0; i < used_; ++i)
            table[i] = items_[i];
        if (items_) ::munmap(items_, capacity_ * sizeof(pid_t));
        items_ = table;
        capacity_ = bigger;
        return true;
    }
    pid_t* items_ = nullptr;
    std::size_t capacity_ = 0, used_ = 0;
    bool sorted_ = false;
};

// "/proc/<pid>/<leaf>" into `buffer`, without allocating.
const char* proc_path(char (&buffer)[64], pid_t pid, const char* leaf) {
    char digits[20];
    int count = 0;
    auto value = static_cast<unsigned long>(pid);
    do {
        digits[count++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value > 0 && count < 20);
    std::size_t length = 0;
    for (const char* c = "/proc/"; *c; ++c)
        buffer[length++] = *c;
    while (count > 0)
        buffer[length++] = digits[--count];
    buffer[length++] = '/';
    for (const char* c = leaf; *c && length < sizeof buffer - 1; ++c)
        buffer[length++] = *c;
    buffer[length] = '\0';
    return buffer;
}

// The parent and process group of `pid`, from /proc/<pid>/stat (after the last ')': the
// command name may hold anything). False when the process is gone or a zombie.
bool read_parentage(pid_t pid, pid_t& parent, pid_t& group) {
    char path[64];
    int fd = ::open(proc_path(path, pid, "stat"), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char text[1024];
    ssize_t got = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    if (got <= 0) return false;
    text[got] = '\0';
    char* close_paren = std::strrchr(text, ')');
    if (!close_paren || close_paren[1] != ' ') return false;
    char state = close_paren[2];
    if (state == 'Z' || state == 'X' || state == '\0') return false;
    char* end = nullptr;
    parent = static_cast<pid_t>(std::strtol(close_paren + 3, &end, 10));
    group = static_cast<pid_t>(std::strtol(end, nullptr, 10));
    return true;
}

// Whether the environment `pid` started with holds exactly the entry `marker` (NAME=value).
// Reads at most a few MiB; a process we may not read (another user's) does not hold it.
bool environment_holds(pid_t pid, const char* marker, std::size_t marker_length) {
    char path[64];
    int fd = ::open(proc_path(path, pid, "environ"), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buffer[4096];
    std::size_t matched = 0;  // bytes of the current entry that match the marker so far
    bool mismatch = false;
    bool found = false;
    for (int chunk = 0; chunk < 1024 && !found; ++chunk) {
        ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        for (ssize_t i = 0; i < got; ++i) {
            char c = buffer[i];
            if (c == '\0') {
                if (!mismatch && matched == marker_length) {
                    found = true;
                    break;
                }
                matched = 0;
                mismatch = false;
            } else if (!mismatch && matched < marker_length && marker[matched] == c) {
                ++matched;
            } else {
                mismatch = true;
            }
        }
    }
    ::close(fd);
    return found;
}

// Calls `visit` with every pid in /proc. getdents64 on a buffer of ours: opendir allocates.
template <typename Visit>
void for_each_process(Visit visit) {
    int dir = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return;
    alignas(8) char buffer[16384];
    for (;;) {
        long got = ::syscall(SYS_getdents64, dir, buffer, sizeof buffer);
        if (got <= 0) break;
        for (long offset = 0; offset < got;) {
            // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
            unsigned short record = 0;
            std::memcpy(&record, buffer + offset + 16, sizeof record);
            const char* name = buffer + offset + 19;
            offset += record;
            if (record == 0) break;
            long pid = 0;
            const char* c = name;
            for (; *c >= '0' && *c <= '9'; ++c)
                pid = pid * 10 + (*c - '0');
            if (*c == '\0' && c != name && pid > 1) visit(static_cast<pid_t>(pid));
        }
    }
    ::close(dir);
}

// The worker is gone: kill everything that is its handlers'. First stop the registered groups
// (nothing in them forks or exits while we look), then find in /proc, pass after pass, every
// process whose parent was found or whose environment carries the marker, stopping each:
// a handler's `timeout` or `setsid` child left the group but is still its child, or was
// orphaned and still carries the worker's id. Then kill them all. Dying by PR_SET_PDEATHSIG,
// a handler may orphan such a child before we look: the marker (or the cgroup) finds it then.
void sweep(PidTable& groups, const char* marker, const char* cgroup_dir) {
    groups.sort();
    for (std::size_t g = 0; g < groups.size(); ++g)
        ::kill(-groups[g], SIGSTOP);
    if (cgroup_dir && *cgroup_dir) kill_cgroup(cgroup_dir);
    std::size_t marker_length = marker ? std::strlen(marker) : 0;
    if (groups.size() == 0 && marker_length == 0) return;
    PidTable found;
    found.sort();  // empty: from now on kept sorted
    pid_t self = ::getpid();
    for (int pass = 0; pass < 16; ++pass) {
        bool more = false;
        for_each_process([&](pid_t pid) {
            if (pid == self || found.contains(pid)) return;
            pid_t parent = 0, group = 0;
            if (!read_parentage(pid, parent, group)) return;
            bool ours = groups.contains(group) || found.contains(parent) ||
                        (marker_length > 0 && environment_holds(pid, marker, marker_length));
            if (!ours) return;
            ::kill(pid, SIGSTOP);
            if (!found.add(pid)) ::kill(pid, SIGKILL);
            more = true;
        });
        if (!more) break;
    }
    for (std::size_t g = 0; g < groups.size(); ++g)
        ::kill(-groups[g], SIGKILL);
    for (std::size_t f = 0; f < found.size(); ++f) {
        ::kill(-found[f], SIGKILL);  // a group it leads, if any (its id cannot be reused: it lives)
        ::kill(found[f], SIGKILL);
    }
}

// Runs with every signal blocked (forked under a SignalBlock). `marker` and `cgroup_dir` live in
// memory the fork copied.
[[noreturn]] void guard_main(int read_fd, const char* marker, const char* cgroup_dir) {
    struct sigaction action {};
    sigemptyset(&action.sa_mask);
    for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
        if (signal_number == SIGKILL || signal_number == SIGSTOP) continue;
        action.sa_handler = ignored_by_guard(signal_number) ? SIG_IGN : SIG_DFL;
        ::sigaction(signal_number, &action, nullptr);  // fails harmlessly for reserved signals
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // The guard must hold nothing of the worker's: not its stdio (a `$(workq-work ...)` would
    // wait for it), and above all not the write end of its own pipe.
    int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        ::dup2(null_fd, 0);
        ::dup2(null_fd, 1);
        ::dup2(null_fd, 2);
    }
    for (int fd = 3; fd < read_fd; ++fd)
        ::close(fd);
    close_fds_from(read_fd + 1);
    // The table grows with the worker's groups (a slot's handler each, up to -c 10,000, and
    // its hooks): a fixed 8,192 let groups past it escape.
    PidTable groups;
    char buffer[4096];
    char line[32];
    int line_length = 0;
    for (;;) {
        ssize_t got = ::read(read_fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;  // the worker is gone
        for (ssize_t i = 0; i < got; ++i) {
            char c = buffer[i];
            if (c != '\n') {
                if (line_length < static_cast<int>(sizeof line) - 1) line[line_length++] = c;
                continue;
            }
            line[line_length] = '\0';
            pid_t group = static_cast<pid_t>(std::strtol(line + 1, nullptr, 10));
            if (group > 1 && line[0] == '+') {
                // Out of memory for the table: the group at least dies now rather than escape
                // the worker's death later (its job fails and is retried).
                if (!groups.add(group)) ::kill(-group, SIGKILL);
            } else if (group > 1 && line[0] == '-') {
                groups.remove_one(group);
            }
            line_length = 0;
        }
    }
    sweep(groups, marker, cgroup_dir);
    ::_exit(0);
}

}  // namespace

std::optional<std::string> find_executable(const std::string& command, std::string& problem) {
    auto check = [&](const std::string& path) -> bool {
        struct stat info {};
        if (::stat(path.c_str(), &info) != 0) return false;
        if (S_ISDIR(info.st_mode)) {
            problem = "is a directory";
            return false;
        }
        if (::access(path.c_str(), X_OK) != 0) {
            problem = "is not executable";
            return false;
        }
        return true;
    };
    problem = "not found";
    if (command.empty()) {
        problem = "is empty";
        return std::nullopt;
    }
    if (command.find('/') != std::string::npos) {
        if (check(command)) return command;
        return std::nullopt;
    }
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    std::string dir;
    std::string first_problem;
    while (std::getline(dirs, dir, ':')) {
        auto candidate = (dir.empty() ? std::string(".") : dir) + "/" + command;
        if (check(candidate)) return candidate;
        if (problem != "not found" && first_problem.empty()) first_problem = problem;
        problem = "not found";
    }
    problem = first_problem.empty() ? "not found on PATH" : first_problem;
    return std::nullopt;
}

namespace {

// What the child of spawn() reads and, on a failed exec, writes: it shares our memory.
struct ChildArguments {
    const SpawnRequest* request;
    char* const* argv;
    char* const* envp;
    pid_t parent;
    int exec_error;  // errno of a failed exec, written by the child
    bool restore_fd_limit;
    rlimit fd_limit;  // the descriptor limit the child gets back (see original_soft_fd_limit)
};

// The child's side of spawn(). With CLONE_VM it runs in our address space on a stack of its own
// while our thread waits (CLONE_VFORK), so it may only make system calls and write
// `exec_error`: no allocation, no locks, no C++ that could touch shared state.
int child_main(void* opaque) {
    auto& args = *static_cast<ChildArguments*>(opaque);
    const SpawnRequest& request = *args.request;
    // Every signal is blocked until reset_signals_for_exec() empties the mask.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != args.parent) ::_exit(127);  // the worker died before we got here
    // Into the worker's cgroup ("0": the writer) before anything of the handler runs; a refusal
    // leaves it to the process group, the subreaper and the marker, as without a cgroup.
    if (request.cgroup_fd >= 0) (void)!::write(request.cgroup_fd, "0", 1);
    if (request.guard_fd >= 0) write_group_message(request.guard_fd, '+', ::getpid());
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    auto place = [&](int from, int to) {
        int source = from >= 0 ? from : null_fd;
        if (source == to) {
            int flags = ::fcntl(to, F_GETFD);
            ::fcntl(to, F_SETFD, flags & ~FD_CLOEXEC);
        } else {
            ::dup2(source, to);
        }
    };
    // dup2 order: a source fd may be 0, 1 or 2 itself, so move them above 2 first.
    int in = request.stdin_fd >= 0 ? ::fcntl(request.stdin_fd, F_DUPFD_CLOEXEC, 3) : -1;
    int out = request.stdout_fd >= 0 ? ::fcntl(request.stdout_fd, F_DUPFD_CLOEXEC, 3) : -1;
    int err = request.stderr_fd >= 0 ? ::fcntl(request.stderr_fd, F_DUPFD_CLOEXEC, 3) : -1;
    place(in, 0);
    place(out, 1);
    place(err, 2);
    close_fds_from(3);
    // Only now: with the worker's descriptors copied, numbers above the lower limit were taken,
    // and the dups above would have failed.
    if (args.restore_fd_limit) ::setrlimit(RLIMIT_NOFILE, &args.fd_limit);
    reset_signals_for_exec();
    ::execve(request.executable.c_str(), args.argv, args.envp);
    args.exec_error = errno;
    ::_exit(127);
}

// clone(CLONE_VM | CLONE_VFORK) is what posix_spawn does: no page tables copied, no
// copy-on-write faults for the exec to pay (fork from the ~6 MiB worker cost 1.05-1.17 ms per
// spawn, this 0.5-0.7 ms; bench/README.md). posix_spawn itself can't set PR_SET_PDEATHSIG or
// register the group with the guard before exec, so we do its trick ourselves. The stack is
// ours until the child has exec'd or exited: CLONE_VFORK suspends this thread until then.
pid_t start_child(ChildArguments& args) {
    constexpr size_t stack_size = 64 * 1024;
    alignas(64) static thread_local char stack[stack_size];
    return ::clone(child_main, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
}

}  // namespace

SpawnResult spawn(const SpawnRequest& request) {
    // Everything the child needs is prepared here: it may only make system calls.
    std::vector<char*> argv;
    argv.reserve(request.argv.size() + 1);
    for (const auto& arg : request.argv)
        argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    envp.reserve(request.env.size() + 1);
    for (const auto& entry : request.env)
        envp.push_back(const_cast<char*>(entry.c_str()));
    envp.push_back(nullptr);
    ChildArguments args{&request, argv.data(), envp.data(), ::getpid(), 0, false, {}};
    if (auto soft = original_soft_fd_limit();
        soft && ::getrlimit(RLIMIT_NOFILE, &args.fd_limit) == 0) {
        args.fd_limit.rlim_cur = std::min(*soft, args.fd_limit.rlim_max);
        args.restore_fd_limit = true;
    }
    int saved_errno = 0;
    pid_t pid;
    {
        SignalBlock blocked;
        pid = start_child(args);
        if (pid < 0) saved_errno = errno;
    }
    if (pid < 0) throw Error(fmt::format("cannot start a process: {}", std::strerror(saved_errno)));
    // Here the child has exec'd (exec_error 0) or failed to and exited with 127.
    return SpawnResult{pid, args.exec_error};
}

PipedChild spawn_piped(SpawnRequest request, bool with_stdin) {
    auto [out_read, out_write] = make_pipe();
    auto [err_read, err_write] = make_pipe();
    UniqueFd in_read, in_write;
    if (with_stdin) std::tie(in_read, in_write) = make_pipe();
    request.stdin_fd = in_read.get();
    request.stdout_fd = out_write.get();
    request.stderr_fd = err_write.get();
    PipedChild child;
    child.result = spawn(request);
    // Our copies of the child's ends must go, or EOF never comes.
    in_read.reset();
    out_write.reset();
    err_write.reset();
    for (const auto* fd : {&in_write, &out_read, &err_read})
        if (fd->valid()) set_nonblocking(fd->get());
    child.stdin_write = std::move(in_write);
    child.stdout_read = std::move(out_read);
    child.stderr_read = std::move(err_read);
    return child;
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return fmt::format("exit {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const char* name = sigabbrev_np(WTERMSIG(status));
        return name ? fmt::format("signal SIG{}", name)
                    : fmt::format("signal {}", WTERMSIG(status));
    }
    return fmt::format("status {}", status);
}

bool become_subreaper() {
    return ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
}

std::optional<std::vector<pid_t>> child_pids() {
    std::error_code error;
    std::filesystem::directory_iterator tasks("/proc/self/task", error);
    if (error) return std::nullopt;
    std::vector<pid_t> children;
    bool listed = false;
    for (const auto& task : tasks) {
        std::ifstream file(task.path() / "children");
        if (!file) continue;
        listed = true;
        long pid = 0;
        while (file >> pid)
            if (pid > 0) children.push_back(static_cast<pid_t>(pid));
    }
    if (!listed) return std::nullopt;
    return children;
}

std::vector<KilledOrphan> kill_unknown_children(const std::function<bool(pid_t)>& known) {
    std::vector<KilledOrphan> killed;
    auto children = child_pids();
    if (!children) return killed;
    for (pid_t pid : *children) {
        if (known(pid)) continue;
        pid_t parent = 0, group = 0;
        if (!read_parentage(pid, parent, group)) continue;  // a zombie, or gone already
        KilledOrphan orphan;
        orphan.pid = pid;
        std::ifstream comm(fmt::format("/proc/{}/comm", pid));
        std::getline(comm, orphan.name);
        // The pid cannot be reused before we reap it: no one else can.
        if (group == pid) ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        killed.push_back(std::move(orphan));
    }
    return killed;
}

GroupGuard GroupGuard::start(const GuardScope& scope) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw Error(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    pid_t pid;
    {
        SignalBlock blocked;
        pid = ::fork();
        if (pid == 0)
            guard_main(read_end.release(), scope.marker.c_str(), scope.cgroup_dir.c_str());
    }
    if (pid < 0)
        throw Error(fmt::format("cannot fork the process guard: {}", std::strerror(errno)));
    return GroupGuard(pid, std::move(write_end));
}

GroupGuard::~GroupGuard() {
    stop();
}

void GroupGuard::adopt(pid_t group) {
    if (write_end_.valid()) write_group_message(write_end_.get(), '+', group);
}

void GroupGuard::forget(pid_t group) {
    if (write_end_.valid()) write_group_message(write_end_.get(), '-', group);
}

void GroupGuard::stop() {
    if (!write_end_.valid()) return;
    write_end_.reset();
    if (pid_ > 0) {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }
}

}  // namespace workq
