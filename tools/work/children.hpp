// The worker's children: every handler and hook process it starts, each the leader of a
// process group of its own; the guard process that kills those groups if the worker dies
// (util/process.hpp); the cgroup they run in where the system gives one; and, as a subreaper,
// whatever a handler left behind outside its group. The worker's SIGCHLD is reap(): it calls
// the exit callback of each child that ended.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "util/cgroup.hpp"
#include "util/process.hpp"

namespace workq::work {

class Children {
  public:
    // `label` names the worker in log lines.
    explicit Children(std::function<std::string()> label) : label_(std::move(label)) {}

    // Becomes a subreaper, makes the handlers' cgroup (where it can) and starts the guard.
    // Call after the embedded server started (its double fork must not make it our orphan).
    void start(const std::string& worker_id);
    // Stops the guard (at exit: every group it watched is gone by then).
    void stop();

    // A child was started: `on_exit(wait_status)` once it has exited and been reaped.
    void watch(pid_t pid, std::function<void(int wait_status)> on_exit);

    // SIGCHLD: reaps every child that exited (killing what its leader left in its group first,
    // so that the group id cannot be reused meanwhile), restarts a dead guard, then kills
    // orphans it inherited. Calls each exit callback after its child is reaped.
    void reap();
    // Kills what the worker inherited as a subreaper: a handler's (or hook's) descendant that
    // left its process group (timeout, setsid) and whose parent died. Also called with every
    // heartbeat (an orphan makes no SIGCHLD of ours until it dies).
    void kill_inherited();

    // What a new child needs: the guard's registration fd and the cgroup's procs fd (or -1).
    int guard_fd() const { return guard_ ? guard_->registration_fd() : -1; }
    int cgroup_fd() const { return cgroup_ ? cgroup_->procs_fd() : -1; }

  private:
    std::function<std::string()> label_;
    std::optional<HandlerCgroup> cgroup_;  // where the system lets the worker have one
    GuardScope guard_scope_;               // the marker and cgroup every guard it starts kills
    std::optional<GroupGuard> guard_;
    std::map<pid_t, std::function<void(int wait_status)>> children_;  // pid -> its exit
};

}  // namespace workq::work
