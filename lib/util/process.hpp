// Child processes: spawning a command in a process group of its own with a clean slate (only
// fds 0-2, default signal dispositions, empty mask, an explicit environment), and the guard
// that kills those process groups if the spawner dies, even by kill -9.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "util/fd.hpp"

namespace workq {

// Resolves a command as execvp would: a name with '/' is taken as it is, else searched on
// PATH. Returns the path, or nullopt with `problem` set ("not found", "not executable").
std::optional<std::string> find_executable(const std::string& command, std::string& problem);

struct SpawnRequest {
    std::string executable;         // a path (see find_executable)
    std::vector<std::string> argv;  // argv[0] included
    std::vector<std::string> env;   // "NAME=value" entries, the whole environment
    int stdin_fd = -1;              // duplicated onto 0 in the child; -1: /dev/null
    int stdout_fd = -1;             // onto 1; -1: /dev/null
    int stderr_fd = -1;             // onto 2; -1: /dev/null
    int guard_fd = -1;              // the GroupGuard's registration fd, or -1
    int cgroup_fd = -1;             // a cgroup.procs the child moves itself into, or -1
};

struct SpawnResult {
    pid_t pid = -1;      // also the process group id
    int exec_error = 0;  // errno of a failed exec (the child has exited with 127), 0 on success
};

// Starts a process (clone with a shared address space, as posix_spawn) and executes. It leads a new
// process group, dies with its parent's thread (PR_SET_PDEATHSIG), moves into the cgroup and
// registers its group with the guard before exec (when asked), and keeps only fds 0-2. Returns once
// the exec has succeeded or failed. Throws Error when the process cannot be made.
SpawnResult spawn(const SpawnRequest& request);

// spawn() with pipes to the child's stdin (when asked), stdout and stderr: the child's ends
// are closed here, ours are non-blocking. Without a stdin pipe the child reads /dev/null.
struct PipedChild {
    SpawnResult result;
    UniqueFd stdin_write, stdout_read, stderr_read;
};
PipedChild spawn_piped(SpawnRequest request, bool with_stdin);

// "exit 3", "signal SIGKILL", from a waitpid status.
std::string describe_wait_status(int status);

// Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER): a
// handler's child that left its process group (timeout, setsid) comes back to us when its
// parent dies, instead of going to init. Returns false when the kernel refuses.
bool become_subreaper();

// This process's children, every thread's (/proc/self/task/*/children); nullopt when the
// kernel does not list them.
std::optional<std::vector<pid_t>> child_pids();

// A child of ours that no one here started (see become_subreaper), killed.
struct KilledOrphan {
    pid_t pid = -1;
    std::string name;  // its command name (/proc/PID/comm), for the log
};

// Kills (SIGKILL) every child of this process for which `known` says false, and the process
// group each leads: the orphans a subreaper inherited. Zombies are left for waitpid. Returns
// what it killed.
std::vector<KilledOrphan> kill_unknown_children(const std::function<bool(pid_t)>& known);

// What a guard kills besides the registered groups when the worker goes.
struct GuardScope {
    // An environment entry ("WORKQ_WORKER_ID=...") that the worker's children and their
    // descendants carry: a process of ours holding exactly that entry is killed, even one that
    // left its process group and was orphaned. Empty: none.
    std::string marker;
    // A cgroup directory (util/cgroup.hpp) holding the worker's children: everything in it is
    // killed and the directory removed. Empty: none.
    std::string cgroup_dir;
};

// One per worker: a tiny process that keeps the ids of the worker's child process groups and,
// when the worker goes away (its pipe closes: exit, crash, kill -9), kills every group still
// registered, and with them every descendant of theirs that left them (setsid, timeout: found
// by parentage in /proc while they are stopped) and what the scope names. Children register
// themselves before exec, so no window leaves a group unknown.
class GroupGuard {
  public:
    // Forks the guard. Throws Error when it cannot.
    static GroupGuard start(const GuardScope& scope = {});

    GroupGuard(GroupGuard&&) noexcept = default;
    GroupGuard& operator=(GroupGuard&&) noexcept = default;
    ~GroupGuard();

    int registration_fd() const { return write_end_.get(); }
    pid_t pid() const { return pid_; }

    // Registers a group that exists already (after the guard itself was replaced).
    void adopt(pid_t group);

    // Tells the guard that a group is gone (its leader reaped and the group killed).
    void forget(pid_t group);

    // Closes the pipe and reaps the guard (it kills whatever is still registered).
    void stop();

  private:
    GroupGuard(pid_t pid, UniqueFd write_end) : pid_(pid), write_end_(std::move(write_end)) {}
    pid_t pid_ = -1;
    UniqueFd write_end_;
};

}  // namespace workq
