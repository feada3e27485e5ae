// workq-queue ls QUEUE [--state waiting|scheduled|running] [--limit N] [--json | --ids]
//                [--no-header]
// workq-queue cancel ID... | -
// workq-queue purge QUEUE [--waiting] [--scheduled] [--yes]
// workq-queue pause QUEUE [--create]
// workq-queue resume QUEUE [--create]
// workq-queue rm QUEUE [--force]
// workq-queue limit QUEUE [--rate N/DURATION] [--concurrency N] [--create]
//
// Acting on live jobs without reaching for redis-cli: every change is one atomic transition of
// the engine, safe against a worker settling the same job at the same moment.
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <functional>
#include <iostream>
#include <map>
#include <set>

#include "cli/exit_codes.hpp"
#include "cli/json.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "cli/runner.hpp"
#include "cli/server.hpp"
#include "cli/table.hpp"
#include "queue/client.hpp"
#include "queue/schedules.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/text.hpp"
#include "util/time.hpp"

namespace workq::queue_tool {
namespace {

constexpr std::size_t purge_batch = 1000;  // per script call: no long-blocking script
constexpr std::size_t page = 500;
constexpr Millis cancelled_ttl{86'400'000};  // a cancelled job stays visible as long as a result

constexpr const char* footer = R"(Output:
  ls: jobs in the order they run: running (worker, attempt, lease left), then waiting (highest
      priority first, then oldest), then scheduled (soonest first). A header and ages at a
      terminal; in a pipe no header, TIME in RFC 3339 (lease end, due or enqueued) and '-' for
      an empty cell. On stderr: a note when the list is empty or --limit cut it, and the
      queue's limits (workq-queue limit) when it has any. --ids: the ids
      alone. --json: one object per line with id, queue, state, priority, attempts,
      max_attempts, created_at, due_at, worker, lease_expires_at, payload_bytes,
      payload_preview.
  cancel: the ids cancelled (waiting, scheduled) or asked to stop (running: the job ends
    cancelled unless its handler ends first), one per line.
  purge: the number of jobs cancelled. At a terminal it first asks (y/N) on stderr; --yes
      does not ask.
  pause, resume, rm: nothing; a note on stderr.
  limit: the queue's limits as they now are, two lines: "rate N/DURATION" and "concurrency N"
      (0: no such limit), the form --rate and --concurrency take.

Exit status:
  0    success
  1    some id was unknown or had already ended (reported on stderr; the others processed);
       a purge declined at the prompt; pause, resume or rm of a queue the namespace has never
       seen (pause and resume: unless --create); rm of a queue that holds jobs, dead letters
       or schedules (unless --force); limit of a queue the namespace has never seen (unless
       --create); the queue is damaged (README, "Damaged data")
  2    usage error: also a --rate that is not N/DURATION (N 0 to 100000, DURATION at least
       1ms) and a --concurrency that is not a whole number from 0 to 1000000
  3    cannot reach Redis

Examples:
  workq-queue ls mail --limit 20
  workq-queue ls mail --state running --json | jq .worker
  workq-queue ls mail --state scheduled --ids --limit 0 | workq-queue cancel -
  workq-queue cancel 01jd9x3k7m2q5v8wza
  workq-queue ls mail --state waiting --json | jq -r 'select(.payload_preview | test("spam")) | .id' | workq-queue cancel -
  workq-queue purge mail --scheduled --yes
  workq-queue pause mail; ...; workq-queue resume mail
  workq-queue rm mial                                   # a typo's queue
  workq-queue limit api --rate 20/1s --concurrency 3    # fleet-wide, every worker and host
  workq-queue limit api --rate 0                        # no rate limit any more
)";

struct Row {
    std::string id, state;
    std::optional<long long> due_ms;
    queue::JobRow fields;
    bool filled = false;
};

Row make_row(std::string id, std::string state) {
    Row row;
    row.id = std::move(id);
    row.state = std::move(state);
    return row;
}

long long server_now_ms(redis::Connection& connection) {
    auto time = connection.call({"TIME"});
    return time.at(0).as_integer() * 1000 + time.at(1).as_integer() / 1000;
}

// Reads the records of the rows not read yet, one script call per page.
void fill(redis::Connection& connection, const queue::QueueKeys& keys, std::vector<Row>& rows) {
    constexpr std::size_t preview_bytes = 64;
    std::vector<Row*> todo;
    for (auto& row : rows)
        if (!row.filled) todo.push_back(&row);
    for (std::size_t start = 0; start < todo.size(); start += page) {
        auto end = std::min(todo.size(), start + page);
        std::vector<std::string> ids;
        for (auto i = start; i < end; ++i)
            ids.push_back(todo[i]->id);
        auto fields = queue::parse_job_rows(
            queue::run(connection, queue::job_rows_call(keys, ids, preview_bytes)));
        for (auto i = start; i < end && i - start < fields.size(); ++i) {
            todo[i]->fields = std::move(fields[i - start]);
            todo[i]->filled = true;
        }
    }
}

// Visits the live jobs of a queue in the order they run, a page at a time (one range read and
// one script call per page of 500), until `limit` rows (0: every one). Memory is one page,
// plus the scheduled jobs already due, which are read whole: a worker appends each to the tail
// of its priority's list, so where it runs depends on its priority. A worker promotes them at
// once, so only a queue without workers, or paused, has many.
class Lister {
  public:
    Lister(redis::Connection& connection, const queue::QueueKeys& keys, std::size_t limit,
           std::function<void(const Row&)> visit)
        : connection_(connection), keys_(keys), limit_(limit), visit_(std::move(visit)) {}

    void run(const std::string& state) {
        auto now = server_now_ms(connection_);
        if (state.empty() || state == "running") running();
        if (state.empty() || state == "waiting") waiting(now);
        if (state.empty() || state == "scheduled") scheduled(now);
        flush();
    }

  private:
    // How many more rows may be read (page-sized when there is no limit).
    std::size_t room() const {
        auto taken = shown_ + pending_.size();
        if (limit_ == 0) return page;
        return taken >= limit_ ? 0 : std::min(page, limit_ - taken);
    }
    void add(Row row) {
        pending_.push_back(std::move(row));
        if (pending_.size() >= page) flush();
    }
    void flush() {
        fill(connection_, keys_, pending_);
        for (const auto& row : pending_)
            visit_(row);
        shown_ += pending_.size();
        pending_.clear();
    }
    // A structure of the wrong type is QueueDamagedError naming it (README, "Damaged data").
    std::vector<std::string> strings(const redis::Reply& reply, const std::string& key,
                                     std::string_view kind) {
        queue::expect_type(reply, key, kind);
        std::vector<std::string> out;
        for (const auto& item : reply.as_array())
            out.push_back(item.as_string());
        return out;
    }

    void running() {
        // Soonest lease deadline first: the order they were claimed or last renewed.
        for (std::size_t start = 0;;) {
            auto n = room();
            if (n == 0) return;
            auto ids =
                strings(connection_.command({"ZRANGE", keys_.running(), std::to_string(start),
                                             std::to_string(start + n - 1)}),
                        keys_.running(), "zset");
            for (auto& id : ids)
                add(make_row(std::move(id), "running"));
            if (ids.size() < n) return;
            start += n;
        }
    }

    void waiting(long long now) {
        // Due scheduled jobs, in the order a worker promotes them, grouped by priority.
        std::map<long long, std::vector<Row>, std::greater<>> due;
        {
            std::vector<Row> rows;
            for (std::size_t start = 0;; start += page) {
                auto ids =
                    strings(connection_.command({"ZRANGEBYSCORE", keys_.scheduled(), "-inf",
                                                 std::to_string(now), "LIMIT",
                                                 std::to_string(start), std::to_string(page)}),
                            keys_.scheduled(), "zset");
                for (auto& id : ids)
                    rows.push_back(make_row(std::move(id), "waiting"));
                if (ids.size() < page) break;
            }
            fill(connection_, keys_, rows);
            for (auto& row : rows)
                due[row.fields.priority].push_back(std::move(row));
        }
        std::set<long long, std::greater<>> priorities;
        for (const auto& text :
             strings(connection_.command({"ZRANGE", keys_.priorities(), "0", "-1"}),
                     keys_.priorities(), "zset"))
            try {
                priorities.insert(std::stoll(text));
            } catch (const std::exception&) {
                // not a priority: nothing of ours waits there
            }
        for (const auto& [priority, rows] : due)
            priorities.insert(priority);
        for (auto priority : priorities) {
            // Highest priority first; within one, oldest first, then the due jobs after them.
            for (std::size_t start = 0;;) {
                auto n = room();
                if (n == 0) return;
                auto ids = strings(
                    connection_.command({"LRANGE", keys_.waiting(priority), std::to_string(start),
                                         std::to_string(start + n - 1)}),
                    keys_.waiting(priority), "list");
                for (auto& id : ids)
                    add(make_row(std::move(id), "waiting"));
                if (ids.size() < n) break;
                start += n;
            }
            if (auto it = due.find(priority); it != due.end())
                for (auto& row : it->second) {
                    if (room() == 0) return;
                    add(std::move(row));
                }
        }
    }

    void scheduled(long long now) {
        // Soonest first. Paged by score: a page starts after the last due time seen, skipping
        // the jobs of that same due time already shown.
        std::string min = fmt::format("({}", now);
        std::size_t skip = 0;
        for (;;) {
            auto n = room();
            if (n == 0) return;
            auto reply =
                connection_.command({"ZRANGEBYSCORE", keys_.scheduled(), min, "+inf", "WITHSCORES",
                                     "LIMIT", std::to_string(skip), std::to_string(n)});
            queue::expect_type(reply, keys_.scheduled(), "zset");
            const auto& items = reply.as_array();
            std::size_t count = 0;
            long long last = 0;
            std::size_t same = 0;
            for (std::size_t i = 0; i + 1 < items.size(); i += 2, ++count) {
                Row row = make_row(items[i].as_string(), "scheduled");
                row.due_ms = static_cast<long long>(std::stod(items[i + 1].as_string()));
                same = (count > 0 && *row.due_ms == last) ? same + 1 : 1;
                last = *row.due_ms;
                add(std::move(row));
            }
            if (count < n) return;
            skip = (min == std::to_string(last)) ? skip + same : same;
            min = std::to_string(last);
        }
    }

    redis::Connection& connection_;
    const queue::QueueKeys& keys_;
    std::size_t limit_;
    std::function<void(const Row&)> visit_;
    std::vector<Row> pending_;
    std::size_t shown_ = 0;
};

// How many live jobs `ls` would list without a limit: to say so when the limit cut the list.
long long count_live(redis::Connection& connection, const queue::QueueKeys& keys,
                     const std::string& state) {
    auto now = std::to_string(server_now_ms(connection));
    long long total = 0;
    auto read = [&](std::initializer_list<std::string_view> command, const std::string& key,
                    std::string_view kind) {
        return queue::expect_type(connection.command(command), key, kind).as_integer();
    };
    if (state.empty() || state == "running")
        total += read({"ZCARD", keys.running()}, keys.running(), "zset");
    if (state.empty() || state == "scheduled")
        total += read({"ZCOUNT", keys.scheduled(), "(" + now, "+inf"}, keys.scheduled(), "zset");
    if (state.empty() || state == "waiting") {
        total += read({"ZCOUNT", keys.scheduled(), "-inf", now}, keys.scheduled(), "zset");
        auto priorities =
            queue::expect_type(connection.command({"ZRANGE", keys.priorities(), "0", "-1"}),
                               keys.priorities(), "zset");
        for (const auto& text : priorities.as_array())
            try {
                auto list = keys.waiting(std::stoll(text.as_string()));
                total += read({"LLEN", list}, list, "list");
            } catch (const std::invalid_argument&) {
                // not a priority: nothing of ours waits there
            } catch (const std::out_of_range&) {
            }
    }
    return total;
}

// Says on stderr what stdout cannot: that the list is empty, or that --limit cut it.
void note_listing(redis::Connection& connection, const queue::QueueKeys& keys,
                  const std::string& state, std::size_t limit, std::size_t shown) {
    auto what = state.empty() ? std::string("live") : state;
    if (shown == 0) {
        log::info(fmt::format("no {} jobs in queue {}", what, keys.queue()));
        return;
    }
    if (limit == 0 || shown < limit) return;
    auto total = count_live(connection, keys, state);
    if (total > static_cast<long long>(shown))
        log::info(fmt::format("{} of {} {} jobs listed (--limit N for more, --limit 0 for all)",
                              shown, total, what));
}

// The limits workq-queue limit set, said on stderr by ls (its stdout holds only jobs).
void note_limits(redis::Connection& connection, const queue::QueueKeys& keys) {
    auto limits = queue::parse_limits_fields(
        connection.call({"HMGET", keys.meta(), "limit_rate", "limit_window", "limit_concurrency"}));
    std::vector<std::string> parts;
    if (limits.rate > 0)
        parts.push_back(fmt::format("at most {} starts in any {}", limits.rate,
                                    format_duration(limits.window)));
    if (limits.concurrency > 0)
        parts.push_back(fmt::format("at most {} running at once", limits.concurrency));
    if (!parts.empty())
        log::info(fmt::format("queue {} is limited (workq-queue limit): {}", keys.queue(),
                              fmt::join(parts, ", ")));
}

enum class LsFormat { table, json, ids };

int ls(redis::Connection& connection, const queue::QueueKeys& keys, const std::string& state,
       std::size_t limit, LsFormat format, cli::Table::Header header) {
    std::size_t shown = 0;
    if (format != LsFormat::table) {
        // One line per job as each page arrives: bounded memory however many are listed.
        Lister(connection, keys, limit, [&](const Row& row) {
            ++shown;
            if (format == LsFormat::ids) {
                cli::write_stdout(row.id + "\n");
                return;
            }
            const auto& f = row.fields;
            boost::json::object object{
                {"id", row.id},
                {"queue", keys.queue()},
                {"state", row.state},
                {"priority", f.priority},
                {"attempts", f.attempts},
                {"max_attempts", f.max_attempts},
                {"created_at", cli::time_value(f.created_ms)},
                {"due_at", cli::time_value(row.due_ms)},
                {"worker",
                 f.worker.empty() ? boost::json::value(nullptr) : boost::json::value(f.worker)},
                {"lease_expires_at",
                 cli::time_value(row.state == "running" ? f.lease_ms : std::nullopt)},
                {"claimed_ahead", f.claimed_ahead},
                {"payload_bytes", f.payload_bytes}};
            cli::put_bytes(object, "payload_preview", f.preview);
            cli::print_json_line(object);
        }).run(state);
        cli::flush_stdout();
        note_listing(connection, keys, state, limit, shown);
        note_limits(connection, keys);
        return 0;
    }
    std::vector<Row> rows;
    Lister(connection, keys, limit, [&](const Row& row) { rows.push_back(row); }).run(state);
    auto now = server_now_ms(connection);
    // At a terminal, times relative to now ("enqueued 4m ago"); in a pipe, one RFC 3339 word
    // and '-' for an empty cell, so that every row has the same fields for awk and cut.
    bool people = cli::stdout_is_terminal();
    auto cell = [&](std::string text) { return people || !text.empty() ? text : "-"; };
    cli::Table table(
        {"ID", "STATE", "PRIO", "ATTEMPTS", people ? "WHEN" : "TIME", "WORKER", "PAYLOAD"},
        {false, false, true, true, false, false, false});
    for (const auto& row : rows) {
        const auto& f = row.fields;
        std::string when;
        if (row.state == "running" && f.lease_ms)
            when = !people ? format_rfc3339(*f.lease_ms)
                           : "lease " +
                                 (*f.lease_ms > now
                                      ? format_duration_short(Millis(*f.lease_ms - now)) + " left"
                                      : "lapsed");
        else if (row.state == "scheduled" && row.due_ms)
            when =
                people ? "runs " + format_relative(*row.due_ms, now) : format_rfc3339(*row.due_ms);
        else if (f.created_ms)
            when = people ? "enqueued " + format_relative(*f.created_ms, now)
                          : format_rfc3339(*f.created_ms);
        // A job claimed ahead (--claim-ahead) is leased, but no handler has it yet.
        table.add({row.id, f.claimed_ahead ? row.state + "(ahead)" : row.state,
                   std::to_string(f.priority), fmt::format("{}/{}", f.attempts, f.max_attempts),
                   cell(when), cell(f.worker), cell(one_line(f.preview, 40))});
    }
    if (!rows.empty()) cli::write_stdout(table.render(header));
    cli::flush_stdout();
    note_listing(connection, keys, state, limit, rows.size());
    note_limits(connection, keys);
    return 0;
}

int cancel(redis::Connection& connection, const std::string& namespace_name,
           std::vector<std::string> ids) {
    if (ids.size() == 1 && ids[0] == "-") {
        ids.clear();
        for (std::string line; std::getline(std::cin, line);) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.empty()) ids.push_back(line);
        }
    }
    std::size_t problems = 0;
    std::vector<std::string> valid;
    for (const auto& id : ids) {
        if (auto problem = job_id_problem(id)) {
            ++problems;
            log::error(fmt::format("cannot cancel '{}': unknown job (invalid id: {})",
                                   printable(id), *problem));
        } else {
            valid.push_back(id);
        }
    }
    queue::NamespaceKeys namespace_keys(namespace_name);
    for (std::size_t start = 0; start < valid.size(); start += page) {
        std::vector<std::string> chunk(
            valid.begin() + static_cast<long>(start),
            valid.begin() + static_cast<long>(std::min(valid.size(), start + page)));
        auto found = queue::find_jobs(connection, namespace_keys, chunk, false);
        std::map<std::string, std::vector<std::string>> by_queue;
        for (std::size_t i = 0; i < chunk.size(); ++i) {
            if (!found[i]) {
                ++problems;
                log::error(fmt::format("cannot cancel {}: unknown job", chunk[i]));
                continue;
            }
            by_queue[found[i]->queue].push_back(chunk[i]);
        }
        for (const auto& [queue_name, queue_ids] : by_queue) {
            queue::QueueKeys keys(namespace_name, queue_name);
            auto results = queue::parse_cancel(
                queue::run(connection, queue::cancel_call(keys, cancelled_ttl, queue_ids)));
            for (std::size_t i = 0; i < results.size() && i < queue_ids.size(); ++i) {
                switch (results[i].status) {
                    case queue::CancelStatus::cancelled:
                        cli::write_stdout(queue_ids[i] + "\n");
                        break;
                    case queue::CancelStatus::flagged:
                        cli::write_stdout(queue_ids[i] + "\n");
                        // Not "ends cancelled": a handler that ends before the worker hears of
                        // the request ends the job as it ended (issue 23, item 12).
                        log::info(fmt::format(
                            "job {} is running: cancel requested; its worker stops the handler "
                            "at its next lease renewal and the job then ends cancelled, unless "
                            "the handler ends first (then the job ends as the handler did: "
                            "workq-status job {})",
                            queue_ids[i], queue_ids[i]));
                        break;
                    case queue::CancelStatus::finished:
                        ++problems;
                        log::error(fmt::format("cannot cancel {}: it already ended {}",
                                               queue_ids[i], queue::to_string(results[i].state)));
                        break;
                    case queue::CancelStatus::unknown:
                        ++problems;
                        log::error(fmt::format("cannot cancel {}: unknown job", queue_ids[i]));
                        break;
                }
            }
        }
        cli::flush_stdout();
    }
    return problems > 0 ? 1 : 0;
}

// A person at a terminal is asked before a purge, with the number it would cancel; anything
// but y/yes declines. Scripts (stdin not a terminal) and --yes are not asked.
bool confirm_purge(redis::Connection& connection, const queue::QueueKeys& keys,
                   queue::PurgeWhich which) {
    long long count = 0;
    std::string what;
    if (which != queue::PurgeWhich::scheduled) {
        count += count_live(connection, keys, "waiting");
        what = "waiting";
    }
    if (which != queue::PurgeWhich::waiting) {
        count += count_live(connection, keys, "scheduled");
        what += what.empty() ? "scheduled" : " and scheduled";
    }
    std::fputs(fmt::format("{}: cancel all {} {} job(s) of queue {}? [y/N] ", log::program(), count,
                           what, keys.queue())
                   .c_str(),
               stderr);
    std::fflush(stderr);
    std::string answer;
    if (!std::getline(std::cin, answer)) return false;
    if (!answer.empty() && answer.back() == '\r') answer.pop_back();
    return answer == "y" || answer == "Y" || answer == "yes" || answer == "YES" || answer == "Yes";
}

// Whether the namespace has seen the queue: in its set of queues, or with a meta of its own (a
// queue whose registration a crash or a race lost still has one).
bool queue_known(redis::Connection& connection, const std::string& namespace_name,
                 const queue::QueueKeys& keys) {
    queue::NamespaceKeys ns(namespace_name);
    if (connection.call({"SISMEMBER", ns.queues(), keys.queue()}).as_integer() == 1 ||
        connection.call({"EXISTS", keys.meta()}).as_integer() == 1)
        return true;
    // A queue that workers serve before its first job is known too: pausing it ahead of the
    // first enqueue is what an operator does. Registered workers are few; pause is rare.
    auto workers = connection.call({"ZRANGE", ns.workers(), "0", "-1"});
    for (const auto& id : workers.elements) {
        auto served = connection.call({"HGET", ns.worker(id.text), "queues"});
        if (served.is_nil()) continue;
        std::string_view rest = served.text;  // "a,q,b"
        while (!rest.empty()) {
            auto comma = rest.find(',');
            if (rest.substr(0, comma) == keys.queue()) return true;
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        }
    }
    return false;
}

// What a queue still holds, for a message: "3 waiting, 1 dead letter".
std::string holdings(const queue::QueueRemoval& left) {
    std::vector<std::string> parts;
    auto part = [&](long long n, const char* one, const char* many) {
        if (n > 0) parts.push_back(fmt::format("{} {}", n, n == 1 ? one : many));
    };
    part(left.waiting, "waiting job", "waiting jobs");
    part(left.scheduled, "scheduled job", "scheduled jobs");
    part(left.running, "running job", "running jobs");
    part(left.dead, "dead letter", "dead letters");
    part(left.schedules, "schedule", "schedules");
    return fmt::format("{}", fmt::join(parts, ", "));
}

// workq-queue rm QUEUE [--force]: takes a queue out of the namespace (a typo's queue, one no
// longer used). Refused while it holds anything a user may still want; --force first cancels
// its waiting and scheduled jobs (records kept as cancelled, as purge does), tells its running
// jobs to stop (they end cancelled), deletes its dead letters and schedules, and says so.
//
// The name leaves the namespace's set first (another slot than the queue's keys), then one
// script removes the queue's own keys if nothing is left. A refusal puts the name back. Killed
// between the two: the queue is missing from listings until the next rm or enqueue, with its
// jobs intact (workq-status QUEUE still shows it). An enqueue racing the removal can leave its
// job in a queue that is not listed, the same way; the next enqueue lists it again. Killed
// before the name is remembered as removed: its ended jobs are not found by id (they expire).
constexpr long long removed_kept_ms = 7LL * 24 * 3600 * 1000;

int remove_queue(redis::Connection& connection, const std::string& namespace_name,
                 const queue::QueueKeys& keys, bool force) {
    auto queues = queue::NamespaceKeys(namespace_name).queues();
    if (!queue_known(connection, namespace_name, keys))
        throw Error(fmt::format("no queue {} in namespace {}", keys.queue(), namespace_name));
    if (force) {
        auto left = queue::parse_queue_remove(
            queue::run(connection, queue::queue_remove_call(keys, queue::RunningJobs::refuse)));
        if (!left.removed) {
            log::warn(fmt::format("--force: removing queue {} and what it holds: {}", keys.queue(),
                                  holdings(left)));
            // (The reply held by name: a range-for over a temporary's member would dangle.)
            auto schedules = connection.call({"SMEMBERS", keys.schedules()});
            for (const auto& name : schedules.as_array())
                queue::run(connection, queue::schedule_remove_call(keys, name.as_string()));
            for (bool more = true; more;)
                more = queue::parse_purge(
                           queue::run(connection, queue::purge_call(keys, queue::PurgeWhich::both,
                                                                    purge_batch, cancelled_ttl)))
                           .more;
            for (;;) {
                auto running =
                    connection.call({"ZRANGE", keys.running(), "0", std::to_string(page - 1)});
                std::vector<std::string> ids;
                for (const auto& id : running.as_array())
                    ids.push_back(id.as_string());
                if (ids.empty()) break;
                queue::run(connection, queue::cancel_call(keys, cancelled_ttl, ids));
                if (ids.size() < page) break;
            }
            for (long long dead = 1; dead > 0;) {
                auto outcomes = queue::parse_id_outcomes(
                    queue::run(connection, queue::dead_delete_call(keys, {}, purge_batch)));
                dead = static_cast<long long>(outcomes.size());
            }
        }
    }
    connection.call({"SREM", queues, keys.queue()});
    auto removal = queue::parse_queue_remove(
        queue::run(connection, queue::queue_remove_call(keys, force ? queue::RunningJobs::allowed
                                                                    : queue::RunningJobs::refuse)));
    if (!removal.removed) {
        connection.call({"SADD", queues, keys.queue()});
        throw Error(fmt::format(
            "queue {} holds {}: not removed (workq-queue purge, workq-dlq rm --all, or rm "
            "--force to remove it with all of that)",
            keys.queue(), holdings(removal)));
    }
    // Remembered a week (the longest an ended job's record usually lives; see
    // NamespaceKeys::removed), so that `workq-status job ID` finds the jobs it ended.
    auto time = connection.call({"TIME"}).as_array();
    long long now_ms =
        std::stoll(time.at(0).as_string()) * 1000 + std::stoll(time.at(1).as_string()) / 1000;
    auto removed = queue::NamespaceKeys(namespace_name).removed();
    connection.call({"ZADD", removed, std::to_string(now_ms), keys.queue()});
    connection.call(
        {"ZREMRANGEBYSCORE", removed, "-inf", fmt::format("({}", now_ms - removed_kept_ms)});
    if (removal.running > 0)
        log::info(
            fmt::format("queue {} removed; its {} running job(s) were told to stop and end "
                        "cancelled",
                        keys.queue(), removal.running));
    else
        log::info(fmt::format("queue {} removed", keys.queue()));
    return 0;
}

long long parse_concurrency_limit(const std::string& text) {
    long long value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value < 0 ||
        value > queue::max_concurrency_limit)
        throw UsageError(
            fmt::format("--concurrency '{}': not a whole number from 0 to {} (0 removes the limit)",
                        printable(text), queue::max_concurrency_limit));
    return value;
}

// workq-queue limit QUEUE [--rate N/DURATION] [--concurrency N]: sets or clears the queue's
// fleet-wide limits (kept on the server, enforced by every worker's claim), then prints them.
int set_limits(redis::Connection& connection, const std::string& namespace_name,
               const queue::QueueKeys& keys, std::optional<queue::RateLimit> rate,
               std::optional<long long> concurrency, bool create) {
    // A typo (`limit mial`) must not make a queue nobody serves.
    if (!create && !queue_known(connection, namespace_name, keys))
        throw Error(
            fmt::format("no queue {} in namespace {}: no limit {} (--create to limit it "
                        "ahead of its first job)",
                        keys.queue(), namespace_name, rate || concurrency ? "set" : "read"));
    queue::QueueLimits limits;
    if (rate || concurrency) {
        connection.call({"SADD", queue::NamespaceKeys(namespace_name).queues(), keys.queue()});
        limits = queue::parse_limits(
            queue::run(connection, queue::set_limits_call(keys, rate, concurrency)));
    } else {
        limits = queue::parse_limits_fields(connection.call(
            {"HMGET", keys.meta(), "limit_rate", "limit_window", "limit_concurrency"}));
    }
    auto shown_rate = queue::format_rate_limit(limits.rate, limits.window);
    cli::write_stdout(fmt::format("rate {}\nconcurrency {}\n",
                                  shown_rate.empty() ? "0" : shown_rate, limits.concurrency));
    cli::flush_stdout();
    return 0;
}

int queue_main(int argc, char** argv) {
    CLI::App app{"List, cancel and purge live jobs; pause, resume, limit and remove a queue.",
                 "workq-queue"};
    app.require_subcommand(1);
    cli::CommonOptions common;
    cli::add_common_options(app, common);
    std::string queue_name, state;
    std::size_t limit = 50;
    bool json = false, ids_only = false, no_header = false, waiting = false, scheduled = false,
         yes = false, create = false, force = false;
    std::vector<std::string> ids;

    auto* ls_cmd = app.add_subcommand("ls", "List live jobs in the order they run");
    ls_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    ls_cmd->add_option("--state", state, "Only waiting, scheduled or running jobs")
        ->check(CLI::IsMember({"waiting", "scheduled", "running"}));
    ls_cmd->add_option("--limit", limit, "At most this many (default 50; 0: no limit)");
    auto* json_flag = ls_cmd->add_flag("--json", json, "One JSON object per line");
    ls_cmd->add_flag("--ids", ids_only, "Only the ids, one per line")->excludes(json_flag);
    ls_cmd->add_flag("--no-header", no_header,
                     "No header line (there is none when stdout is not a terminal)");
    auto* cancel_cmd = app.add_subcommand(
        "cancel", "Cancel jobs: waiting/scheduled at once, running via their worker");
    cancel_cmd->add_option("ID", ids, "Job ids, or - to read them from stdin")->required();
    auto* purge_cmd =
        app.add_subcommand("purge", "Cancel every waiting and/or scheduled job of a queue");
    purge_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    purge_cmd->add_flag("--waiting", waiting, "Only waiting jobs");
    purge_cmd->add_flag("--scheduled", scheduled, "Only scheduled jobs");
    purge_cmd->add_flag(
        "-y,--yes", yes,
        "Do not ask (it asks only when stdin is a terminal: scripts need no --yes)");
    auto* pause_cmd =
        app.add_subcommand("pause", "No worker anywhere claims from the queue until resume");
    pause_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    pause_cmd->add_flag("--create", create,
                        "Pause a queue the namespace has never seen (ahead of its first job)");
    auto* resume_cmd =
        app.add_subcommand("resume", "Let workers claim from the queue again (wakes idle ones)");
    resume_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    resume_cmd->add_flag("--create", create, "Resume a queue the namespace has never seen");
    auto* rm_cmd = app.add_subcommand(
        "rm", "Remove a queue that holds no job and no dead letter (a typo's queue)");
    rm_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    rm_cmd->add_flag("--force", force,
                     "Also when it holds jobs: cancel them, delete its dead letters and schedules");
    auto* limit_cmd = app.add_subcommand(
        "limit", "Limit how fast and how many of the queue's jobs start, across every worker");
    limit_cmd->add_option("QUEUE", queue_name, "Queue")->required();
    std::optional<std::string> rate_text, concurrency_text;
    limit_cmd->add_option("--rate", rate_text,
                          "At most N jobs start in any window of DURATION (N/DURATION: 10/1s, "
                          "600/1m; 0 removes it)");
    limit_cmd->add_option("--concurrency", concurrency_text,
                          "At most N jobs running at once (0 removes it)");
    limit_cmd->add_flag("--create", create,
                        "Limit a queue the namespace has never seen (ahead of its first job)");
    cli::describe_tool(app, footer);
    cli::parse_command_line(app, argc, argv);
    auto config = cli::finish_options(app, common, "queue");
    auto server = cli::resolve_server(common, config, "queue");
    if (!cancel_cmd->parsed()) check_queue_name(queue_name);
    // limit's values are checked before anything is sent (a bad one is exit 2 with no server).
    std::optional<queue::RateLimit> rate;
    std::optional<long long> concurrency_limit;
    if (limit_cmd->parsed()) {
        if (rate_text) rate = queue::parse_rate_limit(*rate_text, "--rate");
        if (concurrency_text) concurrency_limit = parse_concurrency_limit(*concurrency_text);
    }

    auto connection = cli::connect(server);
    queue::QueueKeys keys(server.namespace_name,
                          queue_name.empty() ? std::string("x") : queue_name);
    if (ls_cmd->parsed())
        return ls(connection, keys, state, limit,
                  json       ? LsFormat::json
                  : ids_only ? LsFormat::ids
                             : LsFormat::table,
                  no_header || !cli::stdout_is_terminal() ? cli::Table::Header::hidden
                                                          : cli::Table::Header::shown);
    if (cancel_cmd->parsed()) return cancel(connection, server.namespace_name, ids);
    if (purge_cmd->parsed()) {
        auto which = waiting == scheduled ? queue::PurgeWhich::both
                     : waiting            ? queue::PurgeWhich::waiting
                                          : queue::PurgeWhich::scheduled;
        if (!yes && ::isatty(STDIN_FILENO) && !confirm_purge(connection, keys, which)) {
            log::error(fmt::format("nothing purged from {}", queue_name));
            return to_int(ExitCode::failed);
        }
        long long total = 0;
        for (;;) {
            auto step = queue::parse_purge(
                queue::run(connection, queue::purge_call(keys, which, purge_batch, cancelled_ttl)));
            total += step.cancelled;
            if (!step.more) break;
        }
        cli::write_stdout(std::to_string(total) + "\n");
        return 0;
    }
    if (rm_cmd->parsed()) return remove_queue(connection, server.namespace_name, keys, force);
    if (limit_cmd->parsed())
        return set_limits(connection, server.namespace_name, keys, rate, concurrency_limit, create);
    bool pause = pause_cmd->parsed();
    // A typo (`pause mial`) must not make a queue and say "paused" while the real one runs.
    if (!create && !queue_known(connection, server.namespace_name, keys))
        throw Error(fmt::format(
            "no queue {} in namespace {}: nothing {} (--create {} it ahead of its first job)",
            queue_name, server.namespace_name, pause ? "paused" : "resumed",
            pause ? "pauses" : "resumes"));
    // Make the queue known to workq-status even when nothing was ever enqueued to it.
    connection.call({"SADD", queue::NamespaceKeys(server.namespace_name).queues(), queue_name});
    auto changed = queue::parse_count(queue::run(connection, queue::set_paused_call(keys, pause)));
    log::info(fmt::format("queue {} {}{}", queue_name, changed ? "" : "was already ",
                          pause ? "paused" : "resumed"));
    return 0;
}

}  // namespace
}  // namespace workq::queue_tool

int main(int argc, char** argv) {
    return workq::cli::run("workq-queue", argc, argv, workq::queue_tool::queue_main);
}
