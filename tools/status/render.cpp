#include "render.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <boost/json.hpp>

#include "cli/json.hpp"
#include "cli/table.hpp"
#include "util/duration.hpp"
#include "util/time.hpp"

namespace workq::status {
namespace {

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const auto& item : items)
        out += (out.empty() ? "" : std::string(separator)) + item;
    return out;
}

std::string age(const std::optional<queue::Millis>& value) {
    return value ? format_duration_short(*value) : "-";
}

// Prometheus label values escape backslash, quote and newline.
std::string label(std::string_view value) {
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

}  // namespace

std::string render_human(const Snapshot& s) {
    std::string out = fmt::format("server: {}{}  redis {}  namespace {}\n", s.server.url,
                                  s.server.embedded ? " (embedded)" : "",
                                  s.server.redis_version.empty() ? "?" : s.server.redis_version,
                                  s.namespace_name);
    if (s.server.tls) out += fmt::format("over {}\n", s.server.transport);
    if (s.server.topology == "sentinel")
        out += fmt::format("sentinel: master {} at {} (named by sentinel {})\n",
                           s.server.master_name, s.server.master_address, s.server.sentinel);
    for (const auto& replica : s.server.replicas)
        out += fmt::format(
            "replica {}: {}{}, lag {}, {} behind\n", replica.address,
            replica.state.empty() ? "?" : replica.state, replica.in_sync ? ", in sync" : "",
            replica.lag_s < 0 ? "?" : fmt::format("{}s", replica.lag_s),
            replica.behind_bytes < 0 ? std::string("?")
                                     : fmt::format("{} bytes", replica.behind_bytes));
    if (s.server.no_replica_in_sync)
        out +=
            cli::paint(s.server.replicas.empty() ? "warning: no replica is attached to the master"
                                                 : "warning: no replica is in sync with the master",
                       cli::Tone::warn) +
            "\n";
    for (const auto& warning : s.server.warnings)
        out += cli::paint("warning: " + warning, cli::Tone::warn) + "\n";
    out += "\n";
    if (s.queues.empty()) {
        out += "no queues yet (a queue appears when a job is first enqueued to it)\n";
    } else {
        cli::Table table({"QUEUE", "WAITING", "SCHEDULED", "RUNNING", "DEAD", "SUCCEEDED", "FAILED",
                          "PER-MIN", "OLDEST", "PAUSED"},
                         {false, true, true, true, true, true, true, true, true, false});
        long long trimmed = 0;
        for (const auto& q : s.queues) {
            const auto& st = q.stats;
            trimmed += st.trimmed;
            table.add({q.name, std::to_string(st.waiting), std::to_string(st.scheduled),
                       std::to_string(st.running),
                       st.dead > 0 ? cli::paint(std::to_string(st.dead), cli::Tone::bad) : "0",
                       std::to_string(st.succeeded), std::to_string(st.failed),
                       std::to_string(st.succeeded_last_minute), age(st.oldest_waiting_age),
                       st.paused ? cli::paint("paused", cli::Tone::warn) : "no"});
        }
        out += table.render();
        for (const auto& q : s.queues) {
            if (q.stats.trimmed > 0)
                out += fmt::format("{}: {} dead letter(s) trimmed by the cap so far\n", q.name,
                                   q.stats.trimmed);
            // A job held by a worker that died stays `running` until a worker of its queue
            // takes it back: say so, or it looks busy forever.
            if (q.stats.overdue > 0)
                out += cli::paint(
                           fmt::format("{}: {} running job(s) overdue: the lease lapsed; a worker "
                                       "of the queue takes them back when it runs",
                                       q.name, q.stats.overdue),
                           cli::Tone::warn) +
                       "\n";
        }
    }
    out += "\n";
    if (s.workers.empty()) {
        out += "no workers\n";
        return out;
    }
    cli::Table workers(
        {"WORKER", "NAME", "HOST", "PID", "STATE", "QUEUES", "BUSY", "PROCESSED", "FAILED",
         "UPTIME", "HEARTBEAT", "LIVE"},
        {false, false, false, true, false, false, true, true, true, true, true, false});
    for (const auto& w : s.workers) {
        auto tone = !w.live                ? cli::Tone::bad
                    : w.state == "running" ? cli::Tone::good
                    : w.state == "error"   ? cli::Tone::bad
                                           : cli::Tone::warn;
        workers.add({w.id, w.name, w.host, std::to_string(w.pid), cli::paint(w.state, tone),
                     join(w.queues, ","), fmt::format("{}/{}", w.busy, w.concurrency),
                     std::to_string(w.processed), std::to_string(w.failed),
                     format_duration_short(queue::Millis(s.server_now_ms - w.started_at_ms)),
                     format_relative(w.last_heartbeat_ms, s.server_now_ms),
                     w.live ? "live" : cli::paint("LOST", cli::Tone::bad)});
    }
    out += workers.render();
    return out;
}

std::string render_json(const Snapshot& s) {
    boost::json::object root;
    boost::json::array warnings;
    for (const auto& warning : s.server.warnings)
        warnings.emplace_back(warning);
    boost::json::array replicas;
    for (const auto& replica : s.server.replicas)
        replicas.push_back(boost::json::object{{"address", replica.address},
                                               {"state", replica.state},
                                               {"lag_s", replica.lag_s},
                                               {"behind_bytes", replica.behind_bytes},
                                               {"in_sync", replica.in_sync}});
    boost::json::object topology{{"kind", s.server.topology}, {"replicas", std::move(replicas)}};
    if (s.server.topology == "sentinel") {
        boost::json::array sentinels;
        for (const auto& sentinel : s.server.sentinels)
            sentinels.emplace_back(sentinel);
        topology["master_name"] = s.server.master_name;
        topology["master"] = s.server.master_address;
        topology["sentinel"] = s.server.sentinel;
        topology["sentinels"] = std::move(sentinels);
    }
    root["server"] = boost::json::object{{"url", s.server.url},
                                         {"topology", std::move(topology)},
                                         {"embedded", s.server.embedded},
                                         {"transport", s.server.transport},
                                         {"redis_version", s.server.redis_version},
                                         {"namespace", s.namespace_name},
                                         {"time", format_rfc3339(s.server_now_ms)},
                                         {"warnings", std::move(warnings)}};
    boost::json::array queues;
    for (const auto& q : s.queues) {
        const auto& st = q.stats;
        boost::json::object item{{"name", q.name},
                                 {"waiting", st.waiting},
                                 {"scheduled", st.scheduled},
                                 {"running", st.running},
                                 {"overdue", st.overdue},
                                 {"dead", st.dead},
                                 {"succeeded", st.succeeded},
                                 {"failed", st.failed},
                                 {"paused", st.paused},
                                 {"succeeded_last_minute", st.succeeded_last_minute},
                                 {"dead_trimmed", st.trimmed}};
        if (st.oldest_waiting_age)
            item["oldest_waiting_age_s"] =
                static_cast<double>(st.oldest_waiting_age->count()) / 1000.0;
        else
            item["oldest_waiting_age_s"] = nullptr;
        queues.push_back(std::move(item));
    }
    root["queues"] = std::move(queues);
    boost::json::array workers;
    for (const auto& w : s.workers) {
        boost::json::array worker_queues;
        for (const auto& queue : w.queues)
            worker_queues.emplace_back(queue);
        workers.push_back(
            boost::json::object{{"id", w.id},
                                {"name", w.name},
                                {"host", w.host},
                                {"pid", w.pid},
                                {"state", w.state},
                                {"queues", std::move(worker_queues)},
                                {"busy", w.busy},
                                {"concurrency", w.concurrency},
                                {"processed", w.processed},
                                {"failed", w.failed},
                                {"started_at", cli::time_value(w.started_at_ms)},
                                {"last_heartbeat", cli::time_value(w.last_heartbeat_ms)},
                                {"live", w.live}});
    }
    root["workers"] = std::move(workers);
    return boost::json::serialize(root) + "\n";
}

std::string render_prometheus(const Snapshot& s) {
    std::string out;
    auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    };
    auto queue_metric = [&](std::string_view name, std::string_view type, std::string_view help,
                            auto value_of) {
        family(name, type, help);
        for (const auto& q : s.queues)
            out += fmt::format("{}{{namespace=\"{}\",queue=\"{}\"}} {}\n", name,
                               label(s.namespace_name), label(q.name), value_of(q.stats));
    };
    using Stats = queue::QueueStats;
    queue_metric("workq_queue_waiting", "gauge", "Jobs waiting to run.",
                 [](const Stats& st) { return st.waiting; });
    queue_metric("workq_queue_scheduled", "gauge", "Jobs scheduled for later (delays and retries).",
                 [](const Stats& st) { return st.scheduled; });
    queue_metric("workq_queue_running", "gauge", "Jobs held by a worker.",
                 [](const Stats& st) { return st.running; });
    queue_metric("workq_queue_overdue", "gauge",
                 "Running jobs whose lease lapsed, not yet taken back by a worker.",
                 [](const Stats& st) { return st.overdue; });
    queue_metric("workq_queue_dead", "gauge", "Dead letters kept.",
                 [](const Stats& st) { return st.dead; });
    queue_metric("workq_queue_succeeded_total", "counter", "Jobs that succeeded.",
                 [](const Stats& st) { return st.succeeded; });
    queue_metric("workq_queue_failed_total", "counter", "Failed attempts.",
                 [](const Stats& st) { return st.failed; });
    queue_metric("workq_queue_dead_trimmed_total", "counter", "Dead letters removed by the cap.",
                 [](const Stats& st) { return st.trimmed; });
    queue_metric("workq_queue_paused", "gauge", "1 when the queue is paused.",
                 [](const Stats& st) { return st.paused ? 1 : 0; });
    queue_metric("workq_queue_oldest_waiting_age_seconds", "gauge",
                 "Age of the oldest waiting job (0 when none).", [](const Stats& st) {
                     return fmt::format(
                         "{:.3f}",
                         st.oldest_waiting_age
                             ? static_cast<double>(st.oldest_waiting_age->count()) / 1000.0
                             : 0.0);
                 });
    long long live = 0, lost = 0;
    for (const auto& w : s.workers)
        (w.live ? live : lost)++;
    family("workq_workers", "gauge", "Registered workers by liveness.");
    out += fmt::format("workq_workers{{namespace=\"{}\",liveness=\"live\"}} {}\n",
                       label(s.namespace_name), live);
    out += fmt::format("workq_workers{{namespace=\"{}\",liveness=\"lost\"}} {}\n",
                       label(s.namespace_name), lost);
    auto worker_metric = [&](std::string_view name, std::string_view type, std::string_view help,
                             auto value_of) {
        family(name, type, help);
        for (const auto& w : s.workers)
            out += fmt::format("{}{{namespace=\"{}\",worker=\"{}\",name=\"{}\",state=\"{}\"}} {}\n",
                               name, label(s.namespace_name), label(w.id), label(w.name),
                               label(w.state), value_of(w));
    };
    using Worker = queue::WorkerRecord;
    worker_metric("workq_worker_busy", "gauge", "Slots running a job.",
                  [](const Worker& w) { return w.busy; });
    worker_metric("workq_worker_concurrency", "gauge", "Slots.",
                  [](const Worker& w) { return w.concurrency; });
    worker_metric("workq_worker_processed_total", "counter", "Jobs the worker finished.",
                  [](const Worker& w) { return w.processed; });
    worker_metric("workq_worker_failed_total", "counter", "Jobs that failed in the worker.",
                  [](const Worker& w) { return w.failed; });
    worker_metric("workq_worker_live", "gauge", "1 while the heartbeat is younger than 15s.",
                  [](const Worker& w) { return w.live ? 1 : 0; });
    family("workq_server_warnings", "gauge",
           "Server settings that put jobs at risk (eviction policy, persistence).");
    out += fmt::format("workq_server_warnings {}\n", s.server.warnings.size());
    // Alert on in_sync="true" == 0 where replicas are expected: the next failover would lose
    // what only the master holds.
    auto in_sync = std::count_if(s.server.replicas.begin(), s.server.replicas.end(),
                                 [](const auto& replica) { return replica.in_sync; });
    family("workq_replicas", "gauge",
           fmt::format("Replicas of the master, by whether they are in sync (online, "
                       "acknowledged within {}s).",
                       redis::replica_max_lag_s));
    out += fmt::format("workq_replicas{{in_sync=\"true\"}} {}\n", in_sync);
    out += fmt::format("workq_replicas{{in_sync=\"false\"}} {}\n",
                       static_cast<long long>(s.server.replicas.size()) - in_sync);
    return out;
}

}  // namespace workq::status
