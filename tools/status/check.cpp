#include "check.hpp"

#include <fmt/format.h>
#include <algorithm>

#include "redis/server_info.hpp"
#include "util/duration.hpp"

namespace workq::status {

Verdict check(const Snapshot& s, const Thresholds& t, const std::vector<std::string>& scope) {
    std::vector<std::string> critical, warning;
    auto compare_max = [&](const std::string& what, long long value,
                           const std::optional<long long>& crit,
                           const std::optional<long long>& warn, std::string_view unit) {
        if (crit && value > *crit)
            critical.push_back(fmt::format("{}: {} {} > {}", what, value, unit, *crit));
        else if (warn && value > *warn)
            warning.push_back(fmt::format("{}: {} {} > {}", what, value, unit, *warn));
    };
    std::string perfdata;
    for (const auto& q : s.queues) {
        const auto& st = q.stats;
        if (!q.damage.empty()) {
            critical.push_back(fmt::format("{}: damaged: {}", q.name, q.damage));
            continue;
        }
        compare_max(q.name, st.waiting, t.max_depth, t.warn_max_depth, "waiting");
        compare_max(q.name, st.dead, t.max_dead, t.warn_max_dead, "dead");
        auto age = st.oldest_waiting_age.value_or(queue::Millis(0));
        if (t.max_age && age > *t.max_age)
            critical.push_back(fmt::format("{}: oldest waiting job {} old > {}", q.name,
                                           format_duration_short(age),
                                           format_duration(*t.max_age)));
        else if (t.warn_max_age && age > *t.warn_max_age)
            warning.push_back(fmt::format("{}: oldest waiting job {} old > {}", q.name,
                                          format_duration_short(age),
                                          format_duration(*t.warn_max_age)));
        // A late tick: no worker serves the queue to fire it (whatever the thresholds).
        if (st.late_schedules > 0)
            warning.push_back(fmt::format("{}: {} schedule(s) late: no worker fires their ticks",
                                          q.name, st.late_schedules));
        perfdata +=
            fmt::format(" '{}_waiting'={} '{}_dead'={} '{}_age'={:.3f}s", q.name, st.waiting,
                        q.name, st.dead, q.name, static_cast<double>(age.count()) / 1000.0);
    }
    long long live = 0;
    for (const auto& w : s.workers) {
        if (!w.live) continue;
        bool serves = scope.empty() ||
                      std::any_of(w.queues.begin(), w.queues.end(), [&](const std::string& q) {
                          return std::find(scope.begin(), scope.end(), q) != scope.end();
                      });
        if (serves) ++live;
    }
    if (!s.registry_damage.empty())
        critical.push_back(fmt::format("workers: damaged: {}", s.registry_damage));
    if (t.min_workers && live < *t.min_workers)
        critical.push_back(fmt::format("{} live worker(s) < {}", live, *t.min_workers));
    else if (t.warn_min_workers && live < *t.warn_min_workers)
        warning.push_back(fmt::format("{} live worker(s) < {}", live, *t.warn_min_workers));
    perfdata += fmt::format(" live_workers={}", live);
    if (!t.worker.empty()) {
        // A name outlives a worker: one restarted under the same name (systemd, a pod) leaves
        // its lost registration behind for a day. The freshest registration is the worker.
        auto found = s.workers.end();
        for (auto w = s.workers.begin(); w != s.workers.end(); ++w) {
            if (w->name != t.worker && w->id != t.worker) continue;
            if (found == s.workers.end() || w->last_heartbeat_ms > found->last_heartbeat_ms)
                found = w;
        }
        auto ago = [&](long long ms) {
            return format_duration_short(queue::Millis(s.server_now_ms - ms));
        };
        if (found == s.workers.end())
            critical.push_back(fmt::format("worker {} is not registered", t.worker));
        else if (found->exited && found->state == "error")
            critical.push_back(fmt::format("worker {} exited in error {} ago: {}", t.worker,
                                           ago(found->stopped_at_ms), found->reason));
        else if (found->exited)
            critical.push_back(
                fmt::format("worker {} stopped {} ago ({})", t.worker, ago(found->stopped_at_ms),
                            found->reason.empty() ? "no reason given" : found->reason));
        else if (!found->live)
            critical.push_back(fmt::format(
                "worker {} is lost (no heartbeat for {})", t.worker,
                format_duration_short(queue::Millis(s.server_now_ms - found->last_heartbeat_ms))));
        else if (found->state == "error")
            critical.push_back(fmt::format("worker {} is in state error", t.worker));
    }
    if (t.server_warnings == ServerWarnings::warn)
        for (const auto& w : s.server.warnings)
            warning.push_back(w);
    // Where replicas are expected (Sentinel, or some attached), none in sync means the next
    // failover loses what only the master holds. The deployment's state, not its settings:
    // --no-server-warnings does not silence it.
    if (s.server.no_replica_in_sync)
        warning.push_back(s.server.replicas.empty()
                              ? std::string("no replica is attached to the master")
                              : fmt::format("no replica in sync with the master ({} attached, none "
                                            "online within {}s)",
                                            s.server.replicas.size(), redis::replica_max_lag_s));
    long long in_sync = std::count_if(s.server.replicas.begin(), s.server.replicas.end(),
                                      [](const auto& replica) { return replica.in_sync; });
    if (s.server.topology == "sentinel" || !s.server.replicas.empty())
        perfdata += fmt::format(" replicas_in_sync={}", in_sync);

    Verdict verdict;
    std::string summary;
    if (!critical.empty()) {
        verdict.code = 2;
        summary = "CRITICAL: ";
    } else if (!warning.empty()) {
        verdict.code = 1;
        summary = "WARNING: ";
    } else {
        summary = fmt::format("OK: {} queue(s), {} live worker(s)", s.queues.size(), live);
    }
    std::string reasons;
    for (const auto& reason : critical)
        reasons += (reasons.empty() ? "" : "; ") + reason;
    for (const auto& reason : warning)
        reasons += (reasons.empty() ? "" : "; ") + reason;
    verdict.line = "WORKQ " + summary + reasons + " |" + perfdata;
    return verdict;
}

}  // namespace workq::status
