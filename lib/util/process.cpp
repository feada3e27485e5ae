#include "util/process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <sstream>

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

// Runs with every signal blocked (forked under a SignalBlock).
[[noreturn]] void guard_main(int read_fd) {
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
    // its hooks): a fixed 8,192 let groups past it escape. It grows by mmap, not malloc: this
    // is a child forked from a threaded process, where malloc's locks may be held forever.
    static pid_t first_table[1024];
    pid_t* groups = first_table;
    std::size_t capacity = std::size(first_table);
    std::size_t used = 0;
    auto grow = [&]() -> bool {
        std::size_t bigger = capacity * 2;
        void* memory = ::mmap(nullptr, bigger * sizeof(pid_t), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) return false;
        auto* table = static_cast<pid_t*>(memory);
        for (std::size_t g = 0; g < used; ++g)
            table[g] = groups[g];
        if (groups != first_table) ::munmap(groups, capacity * sizeof(pid_t));
        groups = table;
        capacity = bigger;
        return true;
    };
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
                if (used < capacity || grow())
                    groups[used++] = group;
                else
                    ::kill(-group, SIGKILL);
            } else if (group > 1 && line[0] == '-') {
                for (std::size_t g = 0; g < used; ++g)
                    if (groups[g] == group) {
                        groups[g] = groups[--used];
                        break;
                    }
            }
            line_length = 0;
        }
    }
    for (std::size_t g = 0; g < used; ++g)
        ::kill(-groups[g], SIGKILL);
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

GroupGuard GroupGuard::start() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw Error(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    pid_t pid;
    {
        SignalBlock blocked;
        pid = ::fork();
        if (pid == 0) guard_main(read_end.release());
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
