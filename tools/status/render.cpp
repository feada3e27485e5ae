#include "render.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <boost/json.hpp>

#include "cli/json.hpp"
#include "cli/table.hpp"
#include "util/duration.hpp"
#include "util/text.hpp"
#include "util/time.hpp"

namespace workq::status {
namespace {

// The queues whose slot is `slot` (a slot in migration).
std::vector<std::string> migrating_queues(const Snapshot& s, int slot) {
    std::vector<std::string> out;
    for (const auto& q : s.queues)
        if (q.slot == slot) out.push_back(q.name);
    return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const auto& item : items)
        out += (out.empty() ? "" : std::string(separator)) + item;
    return out;
}

// "20/1s" (rate), "3 running" (concurrency), both joined by ", "; "-" for none.
std::string limits_cell(const queue::QueueLimits& limits) {
    std::string out = queue::format_rate_limit(limits.rate, limits.window);
    if (limits.concurrency > 0)
        out += fmt::format("{}{} running", out.empty() ? "" : ", ", limits.concurrency);
    return out.empty() ? "-" : out;
}

std::string age(const std::optional<queue::Millis>& value) {
    return value ? format_duration_short(*value) : "-";
}

// What the STATE column and the JSON's `state` say: a lost worker's last reported state is
// not what it is doing now (it may be dead), so it shows as `lost`.
std::string shown_state(const queue::WorkerRecord& w) {
    return !w.exited && !w.live ? std::string("lost") : w.state;
}

// How long it ran: until now while live, until its last heartbeat when lost (it stopped
// beating then), until it stopped when exited.
queue::Millis uptime(const queue::WorkerRecord& w, long long now_ms) {
    long long end = w.exited ? w.stopped_at_ms : w.live ? now_ms : w.last_heartbeat_ms;
    if (w.started_at_ms <= 0 || end < w.started_at_ms) return queue::Millis(0);
    return queue::Millis(end - w.started_at_ms);
}

// Exited workers shown in the table at most; --json lists every one.
constexpr std::size_t exited_shown = 10;

}  // namespace

std::string render_human(const Snapshot& s, const Screen& screen) {
    auto fit = [&](const std::string& line) {
        return (screen.width > 0 ? cli::cut_to_width(line, screen.width) : line) + "\n";
    };
    std::string head = fit(fmt::format(
        "server: {}{}  redis {}  namespace {}", s.server.url,
        s.server.embedded ? " (embedded)" : "",
        s.server.redis_version.empty() ? "?" : s.server.redis_version, s.namespace_name));
    std::size_t head_lines = 1;
    if (s.server.tls) {
        head += fit(fmt::format("over {}", s.server.transport));
        ++head_lines;
    }
    if (s.server.topology == "sentinel") {
        head += fit(fmt::format("sentinel: master {} at {} (named by sentinel {})",
                                s.server.master_name, s.server.master_address, s.server.sentinel));
        ++head_lines;
    }
    if (s.server.topology == "cluster") {
        // One line per master: its share of the slots and the queues it serves.
        for (const auto& master : s.server.cluster_masters) {
            std::vector<std::string> served;
            for (const auto& q : s.queues)
                if (q.node == master.address) served.push_back(q.name);
            head += fit(fmt::format("cluster master {}: {} slots, queues: {}", master.address,
                                    master.slots, served.empty() ? "-" : join(served, ", ")));
            ++head_lines;
        }
        // Slots on their way to another master (README, "Cluster"): their queues wait.
        for (const auto& migration : s.server.migrations) {
            auto moving = migrating_queues(s, migration.slot);
            head += fit(cli::paint(
                fmt::format("cluster slot {} migrating from {} to {}{}, queues: {}", migration.slot,
                            migration.from, migration.to,
                            migration.from_marked && migration.to_marked ? ""
                            : migration.from_marked ? " (the target does not say IMPORTING)"
                                                    : " (the source does not say MIGRATING)",
                            moving.empty() ? "-" : join(moving, ", ")),
                cli::Tone::warn));
            ++head_lines;
        }
    }
    for (const auto& replica : s.server.replicas) {
        head += fit(fmt::format(
            "replica {}: {}{}, lag {}, {} behind", replica.address,
            replica.state.empty() ? "?" : replica.state, replica.in_sync ? ", in sync" : "",
            replica.lag_s < 0 ? "?" : fmt::format("{}s", replica.lag_s),
            replica.behind_bytes < 0 ? std::string("?")
                                     : fmt::format("{} bytes", replica.behind_bytes)));
        ++head_lines;
    }
    if (s.server.no_replica_in_sync) {
        head += fit(cli::paint(s.server.replicas.empty()
                                   ? "warning: no replica is attached to the master"
                                   : "warning: no replica is in sync with the master",
                               cli::Tone::warn));
        ++head_lines;
    }
    for (const auto& warning : s.server.warnings) {
        head += fit(cli::paint("warning: " + warning, cli::Tone::warn));
        ++head_lines;
    }

    // What each section would take, and what fits: notes go first, then rows, so that the
    // server line, both headers and the footer stay on the screen.
    std::vector<std::string> notes;
    // Damage first: of all notes, the one an operator must not miss.
    for (const auto& q : s.queues)
        if (!q.damage.empty())
            notes.push_back(cli::paint(
                fmt::format("{}: damaged: {} (README, \"Damaged data\")", q.name, q.damage),
                cli::Tone::bad));
    if (!s.registry_damage.empty())
        notes.push_back(cli::paint(
            fmt::format("workers: damaged: {}; the workers it lists are not shown (README, "
                        "\"Damaged data\")",
                        s.registry_damage),
            cli::Tone::bad));
    for (const auto& q : s.queues) {
        if (q.stats.trimmed > 0)
            notes.push_back(fmt::format("{}: {} dead letter(s) trimmed by the cap so far", q.name,
                                        q.stats.trimmed));
        if (q.stats.schedules > 0) {
            std::string line = fmt::format(
                "{}: {} schedule(s), next tick {}", q.name, q.stats.schedules,
                q.stats.next_tick_ms ? format_relative(*q.stats.next_tick_ms, s.server_now_ms)
                                     : std::string("none (paused)"));
            if (q.stats.late_schedules > 0)
                line += cli::paint(fmt::format("; {} late: no worker of the queue fires them",
                                               q.stats.late_schedules),
                                   cli::Tone::warn);
            notes.push_back(line);
        }
        // A job held by a worker that died stays `running` until a worker of its queue takes it
        // back: say so, or it looks busy forever.
        if (q.stats.overdue > 0)
            notes.push_back(cli::paint(
                fmt::format("{}: {} running job(s) overdue: the lease lapsed; a worker of the "
                            "queue takes them back when it runs",
                            q.name, q.stats.overdue),
                cli::Tone::warn));
    }
    std::vector<const queue::WorkerRecord*> registered, exited;
    for (const auto& w : s.workers)
        (w.exited ? exited : registered).push_back(&w);
    // A paused worker says why (its breaker tripped, its health check fails, SIGTSTP).
    for (const auto* w : registered)
        if (w->live && w->state == "paused" && !w->reason.empty())
            notes.push_back(cli::paint(
                fmt::format("worker {} paused: {}", w->name.empty() ? w->id : w->name, w->reason),
                cli::Tone::warn));
    // Most recent first; a cron --burst every minute leaves many.
    std::sort(exited.begin(), exited.end(),
              [](const auto* a, const auto* b) { return a->stopped_at_ms > b->stopped_at_ms; });
    std::size_t queue_rows = s.queues.size(), worker_rows = registered.size();
    std::size_t shown_notes = notes.size(), shown_queues = queue_rows, shown_workers = worker_rows;
    std::size_t shown_exited = std::min(exited.size(), exited_shown);
    if (screen.height > 0) {
        // head, blank, queue header, blank, worker header (or their one-line stand-ins)
        std::size_t fixed = head_lines + 4 + screen.footer_lines;
        std::size_t room = screen.height > fixed ? screen.height - fixed : 0;
        if (queue_rows + worker_rows + notes.size() > room) {
            shown_notes = 0;
            room = room > 0 ? room - 1 : 0;  // the "not shown" line
            if (queue_rows + worker_rows > room) {
                // Queues first, leaving workers a third of the rows (or what they need).
                shown_workers = std::min(worker_rows, room / 3);
                shown_queues = std::min(queue_rows, room - shown_workers);
                shown_workers = std::min(worker_rows, room - shown_queues);
            } else {
                shown_notes = std::min(notes.size(), room - queue_rows - worker_rows);
            }
        }
        // Exited workers only where everything else fit: blank, title, header, rows.
        std::size_t used = shown_queues + shown_workers + shown_notes;
        std::size_t left = room > used + 3 ? room - used - 3 : 0;
        shown_exited = std::min({exited.size(), exited_shown, left});
    }

    std::string out = head + "\n";
    if (s.queues.empty()) {
        out += fit("no queues yet (a queue appears when a job is first enqueued to it)");
    } else {
        cli::Table table({"QUEUE", "WAITING", "SCHEDULED", "RUNNING", "DEAD", "SUCCEEDED", "FAILED",
                          "PER-MIN", "OLDEST", "PAUSED", "LIMITS"},
                         {false, true, true, true, true, true, true, true, true, false, false});
        // A narrow screen keeps the queue, its backlog, what runs and what died.
        table.set_drop_order({10, 7, 6, 2, 8, 5, 9});
        for (std::size_t i = 0; i < shown_queues; ++i) {
            const auto& st = s.queues[i].stats;
            if (!s.queues[i].damage.empty()) {
                table.add({s.queues[i].name, cli::paint("damaged", cli::Tone::bad), "?", "?", "?",
                           "?", "?", "?", "?", "?"});
                continue;
            }
            if (s.queues[i].counts_migrating) {
                table.add({s.queues[i].name, cli::paint("migrating", cli::Tone::warn), "?", "?",
                           "?", "?", "?", "?", "?", "?"});
                continue;
            }
            // Jobs claimed ahead (workq-work --claim-ahead) are leased but no handler has them:
            // not counted as running, shown beside them.
            table.add(
                {s.queues[i].name, std::to_string(st.waiting), std::to_string(st.scheduled),
                 st.claimed_ahead > 0 ? fmt::format("{} +{} ahead", st.running, st.claimed_ahead)
                                      : std::to_string(st.running),
                 st.dead > 0 ? cli::paint(std::to_string(st.dead), cli::Tone::bad) : "0",
                 std::to_string(st.succeeded), std::to_string(st.failed),
                 std::to_string(st.succeeded_last_minute), age(st.oldest_waiting_age),
                 st.paused ? cli::paint("paused", cli::Tone::warn) : "no", limits_cell(st.limits)});
        }
        out += table.render(cli::Table::Header::shown, screen.width);
        for (std::size_t i = 0; i < shown_notes; ++i)
            out += fit(notes[i]);
    }
    out += "\n";
    if (registered.empty()) {
        out += "no workers\n";
    } else {
        cli::Table workers(
            {"WORKER", "NAME", "HOST", "PID", "STATE", "QUEUES", "BUSY", "PROCESSED", "FAILED",
             "UPTIME", "HEARTBEAT", "LIVE"},
            {false, false, false, true, false, false, true, true, true, true, true, false});
        // A narrow screen keeps the name, its state, how busy it is and whether it lives.
        workers.set_drop_order({0, 2, 3, 10, 9, 8, 7, 5, 6});
        for (std::size_t i = 0; i < shown_workers; ++i) {
            const auto& w = *registered[i];
            auto tone = !w.live                ? cli::Tone::bad
                        : w.state == "running" ? cli::Tone::good
                        : w.state == "error"   ? cli::Tone::bad
                                               : cli::Tone::warn;
            workers.add({w.id, w.name, w.host, std::to_string(w.pid),
                         cli::paint(shown_state(w), tone), join(w.queues, ","),
                         fmt::format("{}/{}", w.busy, w.concurrency), std::to_string(w.processed),
                         std::to_string(w.failed),
                         format_duration_short(uptime(w, s.server_now_ms)),
                         format_relative(w.last_heartbeat_ms, s.server_now_ms),
                         w.live ? "live" : cli::paint("LOST", cli::Tone::bad)});
        }
        out += workers.render(cli::Table::Header::shown, screen.width);
    }
    if (shown_exited > 0) {
        out += "\n" + fit("exited (kept an hour after a clean stop, a day after an error):");
        cli::Table table({"WORKER", "NAME", "HOST", "PID", "STATE", "QUEUES", "PROCESSED", "FAILED",
                          "UPTIME", "EXITED", "REASON"},
                         {false, false, false, true, false, false, true, true, true, true, false});
        table.set_drop_order({0, 2, 3, 8, 7, 6, 5});
        for (std::size_t i = 0; i < shown_exited; ++i) {
            const auto* w = exited[i];
            table.add({w->id, w->name, w->host, std::to_string(w->pid),
                       w->state == "error" ? cli::paint(w->state, cli::Tone::bad) : w->state,
                       join(w->queues, ","), std::to_string(w->processed),
                       std::to_string(w->failed),
                       format_duration_short(uptime(*w, s.server_now_ms)),
                       format_relative(w->stopped_at_ms, s.server_now_ms),
                       one_line(w->reason.empty() ? "-" : w->reason, 80)});
        }
        out += table.render(cli::Table::Header::shown, screen.width);
        if (screen.height == 0 && exited.size() > shown_exited)
            out += fmt::format("{} more exited worker(s) not shown (--json lists every one)\n",
                               exited.size() - shown_exited);
    }
    std::vector<std::string> hidden;
    if (shown_queues < queue_rows)
        hidden.push_back(fmt::format("{} queue(s)", queue_rows - shown_queues));
    if (shown_workers < worker_rows)
        hidden.push_back(fmt::format("{} worker(s)", worker_rows - shown_workers));
    if (screen.height > 0 && shown_exited < exited.size())
        hidden.push_back(fmt::format("{} exited worker(s)", exited.size() - shown_exited));
    if (shown_notes < notes.size())
        hidden.push_back(fmt::format("{} note(s)", notes.size() - shown_notes));
    if (!hidden.empty())
        out += fit(cli::paint(fmt::format("... {} not shown (a taller terminal, or name the "
                                          "queues: workq-status --watch QUEUE...)",
                                          join(hidden, ", ")),
                              cli::Tone::dim));
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
    if (s.server.topology == "cluster") {
        boost::json::array masters;
        for (const auto& master : s.server.cluster_masters) {
            boost::json::array served;
            for (const auto& q : s.queues)
                if (q.node == master.address) served.emplace_back(q.name);
            masters.push_back(boost::json::object{{"address", master.address},
                                                  {"slots", master.slots},
                                                  {"queues", std::move(served)}});
        }
        topology["masters"] = std::move(masters);
        boost::json::array migrations;
        for (const auto& migration : s.server.migrations) {
            boost::json::array moving;
            for (const auto& name : migrating_queues(s, migration.slot))
                moving.emplace_back(name);
            migrations.push_back(boost::json::object{{"slot", migration.slot},
                                                     {"from", migration.from},
                                                     {"to", migration.to},
                                                     {"source_migrating", migration.from_marked},
                                                     {"target_importing", migration.to_marked},
                                                     {"queues", std::move(moving)}});
        }
        topology["migrations"] = std::move(migrations);
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
        boost::json::value node =
            q.node.empty() ? boost::json::value(nullptr) : boost::json::value(q.node);
        boost::json::value slot =
            q.slot < 0 ? boost::json::value(nullptr) : boost::json::value(q.slot);
        boost::json::value migrating = nullptr;
        for (const auto& migration : s.server.migrations)
            if (migration.slot == q.slot)
                migrating = boost::json::object{{"from", migration.from}, {"to", migration.to}};
        if (!q.damage.empty() || q.counts_migrating) {
            // Its counts are unknown: null, not a zero that looks like an empty queue.
            boost::json::object item{{"name", q.name},
                                     {"node", node},
                                     {"slot", slot},
                                     {"migrating", migrating},
                                     {"damaged", q.damage.empty() ? boost::json::value(nullptr)
                                                                  : boost::json::value(q.damage)}};
            for (const char* field :
                 {"waiting", "scheduled", "running", "claimed_ahead", "overdue", "dead",
                  "succeeded", "failed", "paused", "succeeded_last_minute", "dead_trimmed",
                  "schedules", "next_tick", "late_schedules", "rate_limit", "concurrency_limit",
                  "oldest_waiting_age_s"})
                item[field] = nullptr;
            queues.push_back(std::move(item));
            continue;
        }
        boost::json::object item{{"name", q.name},
                                 {"node", node},
                                 {"slot", slot},
                                 {"migrating", migrating},
                                 {"damaged", nullptr},
                                 {"waiting", st.waiting},
                                 {"scheduled", st.scheduled},
                                 {"running", st.running},
                                 {"claimed_ahead", st.claimed_ahead},
                                 {"overdue", st.overdue},
                                 {"dead", st.dead},
                                 {"succeeded", st.succeeded},
                                 {"failed", st.failed},
                                 {"paused", st.paused},
                                 {"succeeded_last_minute", st.succeeded_last_minute},
                                 {"dead_trimmed", st.trimmed},
                                 {"schedules", st.schedules},
                                 {"next_tick", cli::time_value(st.next_tick_ms)},
                                 {"late_schedules", st.late_schedules}};
        // workq-queue limit: "20/1s" and a number, null when the queue has no such limit.
        auto rate = queue::format_rate_limit(st.limits.rate, st.limits.window);
        item["rate_limit"] = rate.empty() ? boost::json::value(nullptr) : boost::json::value(rate);
        item["concurrency_limit"] = st.limits.concurrency > 0
                                        ? boost::json::value(st.limits.concurrency)
                                        : boost::json::value(nullptr);
        if (st.oldest_waiting_age)
            item["oldest_waiting_age_s"] =
                static_cast<double>(st.oldest_waiting_age->count()) / 1000.0;
        else
            item["oldest_waiting_age_s"] = nullptr;
        queues.push_back(std::move(item));
    }
    root["queues"] = std::move(queues);
    boost::json::array workers, exited;
    for (const auto& w : s.workers) {
        boost::json::array worker_queues;
        for (const auto& queue : w.queues)
            worker_queues.emplace_back(queue);
        boost::json::object item{
            {"id", w.id},
            {"name", w.name},
            {"host", w.host},
            {"pid", w.pid},
            {"state", shown_state(w)},
            {"queues", std::move(worker_queues)},
            {"busy", w.busy},
            {"concurrency", w.concurrency},
            {"processed", w.processed},
            {"failed", w.failed},
            {"started_at", cli::time_value(w.started_at_ms)},
            {"last_heartbeat", cli::time_value(w.last_heartbeat_ms)},
            {"uptime_s", static_cast<double>(uptime(w, s.server_now_ms).count()) / 1000.0},
            {"live", w.live}};
        if (w.exited) {
            item["stopped_at"] = cli::time_value(w.stopped_at_ms);
            item["reason"] = w.reason;
            exited.push_back(std::move(item));
        } else {
            // Why a paused worker claims nothing (the breaker, a failing health check,
            // SIGTSTP); empty otherwise.
            item["reason"] = w.reason;
            workers.push_back(std::move(item));
        }
    }
    root["workers"] = std::move(workers);
    root["exited_workers"] = std::move(exited);
    if (!s.registry_damage.empty())
        root["registry_damaged"] = s.registry_damage;
    else
        root["registry_damaged"] = nullptr;
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
            if (q.damage.empty() && !q.counts_migrating)  // unknown: no sample
                out += fmt::format("{}{{namespace=\"{}\",queue=\"{}\"}} {}\n", name,
                                   prometheus_label(s.namespace_name), prometheus_label(q.name),
                                   value_of(q.stats));
    };
    using Stats = queue::QueueStats;
    queue_metric("workq_queue_waiting", "gauge", "Jobs waiting to run.",
                 [](const Stats& st) { return st.waiting; });
    queue_metric("workq_queue_scheduled", "gauge", "Jobs scheduled for later (delays and retries).",
                 [](const Stats& st) { return st.scheduled; });
    queue_metric("workq_queue_running", "gauge", "Jobs a worker's handler runs.",
                 [](const Stats& st) { return st.running; });
    queue_metric("workq_queue_claimed_ahead", "gauge",
                 "Jobs a worker holds leased ahead of its busy slots (--claim-ahead), no handler "
                 "yet.",
                 [](const Stats& st) { return st.claimed_ahead; });
    queue_metric("workq_queue_overdue", "gauge",
                 "Running jobs whose lease lapsed, not yet taken back by a worker.",
                 [](const Stats& st) { return st.overdue; });
    queue_metric("workq_queue_schedules", "gauge", "Schedules (workq-schedule) of the queue.",
                 [](const Stats& st) { return st.schedules; });
    queue_metric("workq_queue_schedules_late", "gauge",
                 "Schedules whose tick is late: no worker of the queue fires them.",
                 [](const Stats& st) { return st.late_schedules; });
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
    queue_metric("workq_queue_rate_limit", "gauge",
                 "Jobs that may start in any window of workq_queue_rate_limit_window_seconds "
                 "(workq-queue limit; 0: no rate limit).",
                 [](const Stats& st) { return st.limits.rate; });
    queue_metric("workq_queue_rate_limit_window_seconds", "gauge",
                 "The window of the rate limit (0: no rate limit).", [](const Stats& st) {
                     return fmt::format("{:.3f}",
                                        static_cast<double>(st.limits.window.count()) / 1000.0);
                 });
    queue_metric("workq_queue_concurrency_limit", "gauge",
                 "Jobs that may run at once across every worker (workq-queue limit; 0: none).",
                 [](const Stats& st) { return st.limits.concurrency; });
    queue_metric("workq_queue_oldest_waiting_age_seconds", "gauge",
                 "Age of the oldest waiting job (0 when none).", [](const Stats& st) {
                     return fmt::format(
                         "{:.3f}",
                         st.oldest_waiting_age
                             ? static_cast<double>(st.oldest_waiting_age->count()) / 1000.0
                             : 0.0);
                 });
    family("workq_queue_damaged", "gauge",
           "1 when a key of the queue holds the wrong type (its other metrics are then absent).");
    for (const auto& q : s.queues)
        out += fmt::format("workq_queue_damaged{{namespace=\"{}\",queue=\"{}\"}} {}\n",
                           prometheus_label(s.namespace_name), prometheus_label(q.name),
                           q.damage.empty() ? 0 : 1);
    long long live = 0, lost = 0, gone = 0;
    for (const auto& w : s.workers)
        (w.exited ? gone : w.live ? live : lost)++;
    family("workq_workers", "gauge",
           "Workers by liveness (exited: final registrations kept a while).");
    out += fmt::format("workq_workers{{namespace=\"{}\",liveness=\"live\"}} {}\n",
                       prometheus_label(s.namespace_name), live);
    out += fmt::format("workq_workers{{namespace=\"{}\",liveness=\"lost\"}} {}\n",
                       prometheus_label(s.namespace_name), lost);
    out += fmt::format("workq_workers{{namespace=\"{}\",liveness=\"exited\"}} {}\n",
                       prometheus_label(s.namespace_name), gone);
    auto worker_metric = [&](std::string_view name, std::string_view type, std::string_view help,
                             auto value_of) {
        family(name, type, help);
        for (const auto& w : s.workers)
            if (!w.exited)
                out += fmt::format(
                    "{}{{namespace=\"{}\",worker=\"{}\",name=\"{}\",state=\"{}\"}} {}\n", name,
                    prometheus_label(s.namespace_name), prometheus_label(w.id),
                    prometheus_label(w.name), prometheus_label(shown_state(w)), value_of(w));
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
