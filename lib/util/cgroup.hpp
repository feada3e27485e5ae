// A cgroup (v2) for a worker's handlers, where the system gives the worker one to divide: a
// child of the cgroup the worker runs in (a systemd service with Delegate=yes has one; a login
// session's scope or a container's root usually is not ours). A process in it cannot leave it
// by setsid, a double fork or a cleared environment, so the guard kills every one of them when
// the worker goes (util/process.hpp). Without one the worker falls back to process groups, a
// subreaper and its environment marker, and the README says what that leaves.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/fd.hpp"

namespace workq {

// Where a process's cgroup v2 is on this system, from its /proc/PID/cgroup (the "0::/path" line)
// and /proc/PID/mountinfo (the cgroup2 mount). `relative` is the path within the hierarchy
// ("/" for its root). nullopt when there is no cgroup v2 mounted or the process is not in it.
struct CgroupLocation {
    std::string dir;       // the directory under the mount, e.g. /sys/fs/cgroup/system.slice/x
    std::string relative;  // e.g. /system.slice/x
};
std::optional<CgroupLocation> locate_cgroup_v2(std::string_view proc_cgroup,
                                               std::string_view mountinfo);

class HandlerCgroup {
  public:
    // Makes <this process's cgroup>/<name> (0755) and opens its cgroup.procs for writing.
    // nullopt, with `why` set, when there is no cgroup v2, the process runs in the root cgroup
    // (never ours to divide), or the directory cannot be made or written (not delegated).
    static std::optional<HandlerCgroup> create(const std::string& name, std::string& why);

    HandlerCgroup(HandlerCgroup&&) noexcept = default;
    HandlerCgroup& operator=(HandlerCgroup&&) noexcept = default;
    // Removes the directory when it is empty (the guard kills what is in it and removes it
    // first; this is for a worker that never started its guard). Never throws.
    ~HandlerCgroup();

    const std::string& dir() const { return dir_; }
    // Its cgroup.procs, open for writing: a child writes "0" to it before exec to move itself in.
    int procs_fd() const { return procs_.get(); }

  private:
    HandlerCgroup(std::string dir, UniqueFd procs)
        : dir_(std::move(dir)), procs_(std::move(procs)) {}
    std::string dir_;
    UniqueFd procs_;
};

// Kills every process in the cgroup at `dir` (cgroup.kill, or else each pid of cgroup.procs
// until none is left) and removes the directory, waiting a bounded time for the processes to
// be gone. Allocates nothing and makes only system calls: the guard, a child forked from a
// threaded process, calls it. Returns false when the directory could not be removed.
bool kill_cgroup(const char* dir);

}  // namespace workq
