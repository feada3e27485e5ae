#include "children.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

#include "util/log.hpp"
#include "util/names.hpp"

namespace workq::work {

void Children::start(const std::string& worker_id) {
    // A handler's descendant that leaves its process group (timeout, setsid) and is orphaned
    // comes to the worker, which kills it (kill_inherited), instead of going to init.
    if (!become_subreaper())
        log::warn(fmt::format("cannot become a subreaper ({}): a handler's child that leaves its "
                              "process group may outlive its job",
                              std::strerror(errno)),
                  {{"worker", label_()}});
    std::string no_cgroup;
    cgroup_ = HandlerCgroup::create("workq-" + worker_id, no_cgroup);
    if (cgroup_)
        log::info("handlers run in the cgroup " + cgroup_->dir(), {{"worker", label_()}});
    else
        log::debug("no cgroup for the handlers: " + no_cgroup +
                       "; process groups, the subreaper and the guard stand in",
                   {{"worker", label_()}});
    guard_scope_.marker = "WORKQ_WORKER_ID=" + worker_id;
    if (cgroup_) guard_scope_.cgroup_dir = cgroup_->dir();
    guard_.emplace(GroupGuard::start(guard_scope_));
}

void Children::stop() {
    if (guard_) guard_->stop();
}

void Children::watch(pid_t pid, std::function<void(int wait_status)> on_exit) {
    children_[pid] = std::move(on_exit);
}

void Children::reap() {
    for (;;) {
        siginfo_t info{};
        if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
        pid_t pid = info.si_pid;
        auto found = children_.find(pid);
        if (found != children_.end()) {
            // The leader is a zombie until reaped, so its group id cannot be reused yet: kill
            // whatever it left behind in its group, tell the guard, then reap.
            ::kill(-pid, SIGKILL);
            if (guard_) guard_->forget(pid);
        }
        int status = 0;
        if (::waitpid(pid, &status, 0) < 0) break;
        if (guard_ && pid == guard_->pid()) {
            log::error("the process guard died; starting a new one", {{"worker", label_()}});
            guard_.emplace(GroupGuard::start(guard_scope_));
            for (const auto& entry : children_)
                guard_->adopt(entry.first);
            continue;
        }
        if (found != children_.end()) {
            auto on_exit = std::move(found->second);
            children_.erase(found);
            on_exit(status);
        }
    }
    // A leader's exit orphans what it left outside its group: that came to us just now.
    kill_inherited();
}

void Children::kill_inherited() {
    auto killed = kill_unknown_children(
        [this](pid_t pid) { return children_.contains(pid) || (guard_ && pid == guard_->pid()); });
    if (killed.empty()) return;
    std::string which;
    for (std::size_t i = 0; i < killed.size() && i < 5; ++i)
        which += fmt::format("{}{} ({})", i == 0 ? "" : ", ", killed[i].pid,
                             printable(killed[i].name, 40));
    if (killed.size() > 5) which += fmt::format(" and {} more", killed.size() - 5);
    log::warn(
        fmt::format(
            "killed {} process{} that a handler or hook left running outside its process group: {}",
            killed.size(), killed.size() == 1 ? "" : "es", which),
        {{"worker", label_()}});
}

}  // namespace workq::work
