// workq-schedule add NAME QUEUE --cron EXPR [--tz ZONE] [--catch-up latest|none]
//                    [--priority N] [--max-attempts N] [--timeout D] [--unique KEY] [-- PAYLOAD]
// workq-schedule ls [QUEUE] [--json]
// workq-schedule rm NAME...
// workq-schedule pause NAME... | resume NAME...
// workq-schedule next NAME [--count N]
//
// Periodic jobs kept in Redis (CONTRACT.md section 11). A schedule lives with its queue; the
// workers serving that queue fire its ticks, each tick one job with the id NAME.<epoch seconds>.
// This tool only defines, lists and removes schedules: it never makes a job itself.
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>

#include "cli/json.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "cli/runner.hpp"
#include "cli/server.hpp"
#include "cli/table.hpp"
#include "queue/client.hpp"
#include "queue/schedules.hpp"
#include "util/cron.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/text.hpp"
#include "util/time.hpp"

namespace workq::schedule_tool {
namespace {

constexpr long long max_priority = 1'000'000;
constexpr std::size_t max_unique_key = 512;
// The payload of a tick's job: the same bound as workq-enqueue's default --max-payload.
constexpr std::size_t max_payload = 1024 * 1024;
constexpr long long max_count = 10'000;  // `next --count`

constexpr const char* footer = R"(Expressions (--cron):
  Five fields, as in crontab(5): minute (0-59), hour (0-23), day of month (1-31), month (1-12
  or jan..dec), day of week (0-7, 0 and 7 are Sunday, or sun..sat). Each field is *, a value,
  a range a-b, or a list of them separated by commas, each with an optional /step (*/15,
  1-30/2; a/step runs from a to the field's end). When the day of month and the day of week
  are both restricted (neither starts with *), a day matching either one fires. Or @hourly,
  @daily (@midnight), @weekly, @monthly, @yearly (@annually), or @every DURATION (whole
  seconds: @every 30s, @every 1h30m; ticks fall on multiples of the period since the epoch).
  Fields are matched in --tz's local time: a time skipped by a daylight-saving change fires
  at the first minute after the gap; a repeated time fires once.

Firing:
  Any running workq-work serving the schedule's queue fires its ticks, within 2 s; each tick
  makes one job with the id NAME.<tick in epoch seconds>, whatever the number of workers.
  Ticks missed while no worker ran: --catch-up latest (default) makes one job for the latest,
  none makes none.

Output:
  add, rm, pause, resume: nothing on stdout; a note on stderr.
  ls: a table of NAME, QUEUE, CRON, TZ, NEXT, LAST JOB, STATE, PAUSED, by queue then name;
      --json: one object per line with name, queue, cron, tz, next (RFC 3339, null while
      paused), last_job, last_job_state, paused, catch_up, priority, max_attempts, timeout,
      unique, payload_bytes.
  next: the next tick times, one RFC 3339 per line.

Environment:
  WORKQ_REDIS_URL, WORKQ_REDIS_PASSWORD, WORKQ_NAMESPACE, WORKQ_CONFIG, REDIS_URL
  Config: the [schedule] table takes the connection and logging keys only.

Exit status:
  0    success
  1    some schedule name was unknown (reported on stderr; the others processed)
  2    usage error: bad option, name, queue name, expression, time zone; a payload over 1 MiB
  3    cannot reach or talk to Redis

Examples:
  workq-schedule add nightly-report reports --cron '30 2 * * *' --tz Europe/Berlin -- full
  workq-schedule add heartbeat pings --cron '@every 1m'
  workq-schedule add invoices billing --cron '0 9 1 * mon-fri' --catch-up none < params.json
  workq-schedule ls --json | jq -r 'select(.paused) | .name'
  workq-schedule next nightly-report --count 3
  workq-schedule pause nightly-report; ...; workq-schedule resume nightly-report
)";

struct AddOptions {
    std::string name, queue, cron, tz = "UTC", catch_up = "latest", timeout, unique;
    long long priority = 0;
    long long max_attempts = 10;
    std::vector<std::string> payload;
};

void check_schedule_name(std::string_view name) {
    if (auto problem = job_id_problem(name))
        throw UsageError(fmt::format("invalid schedule name '{}': {}", printable(name), *problem));
    if (name.size() > queue::max_schedule_name)
        throw UsageError(fmt::format(
            "invalid schedule name '{}': is longer than {} characters (its jobs' ids add "
            "'.<epoch seconds>')",
            printable(name), queue::max_schedule_name));
}

long long server_now_ms(redis::Connection& connection) {
    auto time = connection.call({"TIME"});
    return time.at(0).as_integer() * 1000 + time.at(1).as_integer() / 1000;
}

SysSeconds seconds_of(long long ms) {
    return SysSeconds{std::chrono::seconds{ms / 1000 - (ms % 1000 < 0 ? 1 : 0)}};
}

long long ms_of(SysSeconds t) {
    return t.time_since_epoch().count() * 1000;
}

// The first tick after the server's time NOW_MS; an expression that never fires was refused
// before anything was written, so nullopt here means a definition changed under us.
std::optional<long long> first_tick_after(const CronExpression& expression, const TimeZone& zone,
                                          long long now_ms) {
    auto next = next_tick(expression, zone, seconds_of(now_ms));
    if (!next) return std::nullopt;
    return ms_of(*next);
}

// "2024-03-31T01:00:00Z": ticks are whole seconds.
std::string tick_text(long long ms) {
    auto text = format_rfc3339(ms);
    if (text.ends_with(".000Z")) text = text.substr(0, text.size() - 5) + "Z";
    return text;
}

// All of stdin as the payload, refused beyond max_payload.
std::string read_stdin_payload() {
    std::string payload;
    char buffer[65536];
    for (;;) {
        auto n = ::read(STDIN_FILENO, buffer, sizeof buffer);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error(
                fmt::format("cannot read the payload from stdin: {}", std::strerror(errno)));
        }
        payload.append(buffer, static_cast<std::size_t>(n));
        if (payload.size() > max_payload)
            throw UsageError(fmt::format(
                "the payload on stdin is over the limit of {} bytes; nothing was written",
                max_payload));
    }
    return payload;
}

// The queues of the namespace that hold a schedule named NAME, for each name: one pipelined
// round trip. Normally one queue or none; two only after an `add` that moved a schedule to
// another queue was interrupted between its steps.
std::vector<std::vector<std::string>> locate(redis::Connection& connection,
                                             const queue::NamespaceKeys& namespace_keys,
                                             const std::vector<std::string>& names) {
    std::vector<std::vector<std::string>> found(names.size());
    auto queues = queue::list_queues(connection, namespace_keys);
    if (queues.empty() || names.empty()) return found;
    for (const auto& name : names)
        for (const auto& queue_name : queues)
            connection.append(
                {"EXISTS", queue::QueueKeys(namespace_keys.name(), queue_name).schedule(name)});
    for (std::size_t i = 0; i < names.size(); ++i)
        for (const auto& queue_name : queues) {
            auto reply = connection.read_reply();
            if (reply.is_error()) throw RedisError("cannot look up schedules: " + reply.text);
            if (reply.as_integer() == 1) found[i].push_back(queue_name);
        }
    return found;
}

// A definition checked whole, before anything is sent.
struct PreparedAdd {
    std::string queue;
    queue::ScheduleDefinition definition;
    CronExpression expression;
    TimeZone zone;
};

PreparedAdd prepare_add(const AddOptions& o) {
    check_schedule_name(o.name);
    check_queue_name(o.queue);
    PreparedAdd prepared;
    prepared.queue = o.queue;
    prepared.expression = parse_cron(o.cron);
    prepared.zone = TimeZone::named(o.tz);
    auto& definition = prepared.definition;
    definition.name = o.name;
    definition.cron = o.cron;
    definition.tz = prepared.zone.name();
    auto catch_up = queue::parse_catch_up(o.catch_up);
    if (!catch_up)
        throw UsageError(
            fmt::format("--catch-up: '{}' is neither latest nor none", printable(o.catch_up)));
    definition.catch_up = *catch_up;
    if (o.priority < -max_priority || o.priority > max_priority)
        throw UsageError(
            fmt::format("--priority: {} is out of range -1000000..1000000", o.priority));
    definition.priority = o.priority;
    if (o.max_attempts < 1)
        throw UsageError(fmt::format("--max-attempts: {} is less than 1", o.max_attempts));
    definition.max_attempts = o.max_attempts;
    if (!o.timeout.empty()) {
        definition.timeout = parse_duration_or_throw(o.timeout, "--timeout");
        if (definition.timeout->count() == 0) definition.timeout.reset();  // 0: the worker's
    }
    if (o.unique.size() > max_unique_key)
        throw UsageError(fmt::format("--unique: the key is longer than {} bytes", max_unique_key));
    definition.unique_key = o.unique;
    if (o.payload.size() > 1)
        throw UsageError(
            "a schedule has one payload: give it as one argument after -- (quote it) or on stdin");
    if (!o.payload.empty()) {
        definition.payload = o.payload.front();
        if (definition.payload.size() > max_payload)
            throw UsageError(fmt::format("the payload is {} bytes, over the limit of {}",
                                         definition.payload.size(), max_payload));
    } else if (!::isatty(STDIN_FILENO)) {
        definition.payload = read_stdin_payload();
    }
    return prepared;
}

int add(redis::Connection& connection, const std::string& namespace_name,
        const PreparedAdd& prepared) {
    const auto& definition = prepared.definition;
    const auto& queue_name = prepared.queue;
    // The expression must fire at all (`0 0 30 2 *` never does): checked against the server's
    // clock, which decides the ticks.
    auto now = server_now_ms(connection);
    auto first = first_tick_after(prepared.expression, prepared.zone, now);
    if (!first)
        throw UsageError(fmt::format(
            "invalid cron expression '{}': it never fires (no day in the next 50 years matches)",
            printable(definition.cron)));

    queue::NamespaceKeys namespace_keys(namespace_name);
    std::vector<std::string> names{definition.name};
    auto holders = locate(connection, namespace_keys, names).front();
    // Make the queue known to workq-status and to the lookups of the other subcommands.
    connection.call({"SADD", namespace_keys.queues(), queue_name});
    queue::QueueKeys keys(namespace_name, queue_name);
    auto result = queue::parse_schedule_define(
        queue::run(connection, queue::schedule_define_call(keys, definition, *first)));
    // A schedule moved to another queue leaves its old one second: if we die in between, both
    // queues hold it until `add` runs again, and its ticks' ids are still made once each in the
    // namespace (the id reservation of workq-enqueue --id).
    for (const auto& old_queue : holders) {
        if (old_queue == queue_name) continue;
        queue::run(connection, queue::schedule_remove_call(
                                   queue::QueueKeys(namespace_name, old_queue), definition.name));
        log::info(fmt::format("schedule {} moved from queue {} to {}", definition.name, old_queue,
                              queue_name));
    }
    log::info(fmt::format("schedule {} {} on queue {}: {}", definition.name,
                          result.created ? "added" : "replaced", queue_name,
                          result.paused ? "paused (workq-schedule resume starts it)"
                                        : "next tick " + tick_text(result.next_ms)));
    return 0;
}

boost::json::value null_or(const std::string& text) {
    if (text.empty()) return nullptr;
    return boost::json::value(text);
}

int ls(redis::Connection& connection, const std::string& namespace_name,
       const std::string& queue_name, bool json) {
    std::vector<std::string> queues;
    if (!queue_name.empty())
        queues.push_back(queue_name);
    else
        queues = queue::list_queues(connection, queue::NamespaceKeys(namespace_name));
    std::vector<queue::ScriptCall> calls;
    for (const auto& name : queues) {
        calls.push_back(queue::schedule_rows_call(queue::QueueKeys(namespace_name, name)));
        queue::append(connection, calls.back());
    }
    auto replies = queues.empty() ? std::vector<redis::Reply>{} : connection.read_script_replies();
    long long now = 0;
    std::vector<queue::ScheduleRow> rows;
    for (std::size_t i = 0; i < queues.size(); ++i) {
        queue::check_reply(calls[i], replies[i]);
        auto read = queue::parse_schedule_rows(replies[i], queues[i]);
        now = read.server_now_ms;
        for (auto& row : read.rows)
            rows.push_back(std::move(row));
    }
    if (json) {
        for (const auto& row : rows) {
            boost::json::object object{
                {"name", row.name},
                {"queue", row.queue},
                {"cron", row.cron},
                {"tz", row.tz},
                {"next", cli::time_value(row.paused ? std::nullopt : row.next_ms)},
                {"last_job", null_or(row.last_job)},
                {"last_job_state", null_or(row.last_job_state)},
                {"paused", row.paused},
                {"catch_up", std::string(queue::to_string(row.catch_up))},
                {"priority", row.priority},
                {"max_attempts", row.max_attempts},
                {"timeout", row.timeout ? boost::json::value(format_duration(*row.timeout))
                                        : boost::json::value(nullptr)},
                {"unique", null_or(row.unique_key)},
                {"payload_bytes", row.payload_bytes}};
            cli::print_json_line(object);
        }
        return 0;
    }
    cli::Table table({"NAME", "QUEUE", "CRON", "TZ", "NEXT", "LAST JOB", "STATE", "PAUSED"});
    for (const auto& row : rows) {
        std::string next = "-";
        if (!row.paused && row.next_ms) {
            next = tick_text(*row.next_ms);
            // Due for long past the firing window: no worker serves the queue.
            if (*row.next_ms + queue::schedule_late_after.count() < now)
                next += cli::paint(
                    fmt::format(" (late {})", format_duration_short(Millis(now - *row.next_ms))),
                    cli::Tone::warn);
        }
        table.add({row.name, row.queue, one_line(row.cron, 40), row.tz, next,
                   row.last_job.empty() ? "-" : row.last_job,
                   row.last_job_state.empty() ? "-" : row.last_job_state,
                   row.paused ? cli::paint("yes", cli::Tone::warn) : "no"});
    }
    if (!table.empty()) cli::write_stdout(table.render());
    return 0;
}

int rm(redis::Connection& connection, const std::string& namespace_name,
       const std::vector<std::string>& names) {
    std::size_t problems = 0;
    auto holders = locate(connection, queue::NamespaceKeys(namespace_name), names);
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (holders[i].empty()) {
            ++problems;
            log::error(fmt::format("cannot remove {}: no such schedule", printable(names[i])));
            continue;
        }
        for (const auto& queue_name : holders[i])
            queue::run(connection, queue::schedule_remove_call(
                                       queue::QueueKeys(namespace_name, queue_name), names[i]));
        log::info(fmt::format("schedule {} removed", names[i]));
    }
    return problems > 0 ? 1 : 0;
}

// The definition of schedule NAME in QUEUE, or nullopt when it is gone.
std::optional<queue::ScheduleRow> read_schedule(redis::Connection& connection,
                                                const queue::QueueKeys& keys, std::string_view name,
                                                long long& now) {
    auto read = queue::parse_schedule_rows(
        queue::run(connection, queue::schedule_rows_call(keys, name)), keys.queue());
    now = read.server_now_ms;
    if (read.rows.empty()) return std::nullopt;
    return std::move(read.rows.front());
}

int set_paused(redis::Connection& connection, const std::string& namespace_name,
               const std::vector<std::string>& names, bool pause) {
    std::size_t problems = 0;
    auto holders = locate(connection, queue::NamespaceKeys(namespace_name), names);
    const char* verb = pause ? "pause" : "resume";
    for (std::size_t i = 0; i < names.size(); ++i) {
        bool known = false;
        for (const auto& queue_name : holders[i]) {
            queue::QueueKeys keys(namespace_name, queue_name);
            long long first = 0;
            if (!pause) {
                // Resuming starts from the first tick after now: ticks missed while paused
                // make no job.
                long long now = 0;
                auto row = read_schedule(connection, keys, names[i], now);
                if (!row) continue;
                auto tick = first_tick_after(parse_cron(row->cron), TimeZone::named(row->tz), now);
                if (!tick) continue;
                first = *tick;
            }
            auto outcome = queue::parse_schedule_set_paused(queue::run(
                connection, queue::schedule_set_paused_call(keys, names[i], pause, first)));
            if (outcome == queue::PauseOutcome::unknown) continue;
            known = true;
            if (outcome == queue::PauseOutcome::unchanged)
                log::info(fmt::format("schedule {} was already {}", names[i],
                                      pause ? "paused" : "running"));
            else
                log::info(pause ? fmt::format("schedule {} paused", names[i])
                                : fmt::format("schedule {} resumed: next tick {}", names[i],
                                              tick_text(first)));
        }
        if (!known) {
            ++problems;
            log::error(fmt::format("cannot {} {}: no such schedule", verb, printable(names[i])));
        }
    }
    return problems > 0 ? 1 : 0;
}

int next(redis::Connection& connection, const std::string& namespace_name, const std::string& name,
         long long count) {
    std::vector<std::string> names{name};
    auto holders = locate(connection, queue::NamespaceKeys(namespace_name), names).front();
    for (const auto& queue_name : holders) {
        long long now = 0;
        auto row =
            read_schedule(connection, queue::QueueKeys(namespace_name, queue_name), name, now);
        if (!row) continue;
        if (row->paused)
            log::info(
                fmt::format("schedule {} is paused: these are the ticks it would fire", name));
        // The stored definition was checked when it was added: a malformed one is a corrupt
        // record, reported as such.
        CronExpression expression;
        TimeZone zone;
        try {
            expression = parse_cron(row->cron);
            zone = TimeZone::named(row->tz);
        } catch (const UsageError& error) {
            throw Error(fmt::format("schedule {} is corrupt: {}", name, error.what()));
        }
        auto t = seconds_of(now);
        for (long long i = 0; i < count; ++i) {
            auto tick = next_tick(expression, zone, t);
            if (!tick) break;
            cli::write_stdout(tick_text(ms_of(*tick)) + "\n");
            t = *tick;
        }
        return 0;
    }
    log::error(fmt::format("no such schedule: {}", printable(name)));
    return 1;
}

int schedule_main(int argc, char** argv) {
    CLI::App app{"Periodic jobs: cron expressions, exactly one job per tick across a fleet.",
                 "workq-schedule"};
    app.require_subcommand(1);
    cli::CommonOptions common;
    cli::add_common_options(app, common);
    AddOptions o;
    std::string queue_name;
    std::vector<std::string> names;
    bool json = false;
    long long count = 5;

    auto* add_cmd = app.add_subcommand("add", "Define a schedule, or replace the one of that name");
    add_cmd->add_option("NAME", o.name, "Schedule name (its jobs' ids are NAME.<epoch seconds>)")
        ->required();
    add_cmd->add_option("QUEUE", o.queue, "Queue its jobs go to")->required();
    add_cmd->add_option("PAYLOAD", o.payload,
                        "Each job's payload (without it: stdin, if not a terminal)");
    add_cmd->add_option("--cron", o.cron, "When: five crontab fields, @daily, @every 5m, ...")
        ->required();
    add_cmd->add_option("--tz", o.tz, "IANA time zone of the fields (default UTC)")
        ->check(cli::not_empty());
    add_cmd->add_option("--catch-up", o.catch_up,
                        "Ticks missed while no worker ran: latest (one job, default) or none");
    add_cmd->add_option("--priority", o.priority, "Jobs' priority, -1000000..1000000 (default 0)");
    add_cmd->add_option("--max-attempts", o.max_attempts, "Jobs' total runs (default 10)");
    add_cmd->add_option("--timeout", o.timeout, "Jobs' per-run limit, over the worker's")
        ->check(cli::not_empty());
    add_cmd
        ->add_option("--unique", o.unique,
                     "No tick's job while a job with this key is scheduled, waiting or running")
        ->check(cli::not_empty());
    auto* ls_cmd = app.add_subcommand("ls", "List schedules: next tick, last job and its state");
    ls_cmd->add_option("QUEUE", queue_name, "Only this queue's");
    ls_cmd->add_flag("--json", json, "One JSON object per line");
    auto* rm_cmd = app.add_subcommand("rm", "Remove schedules (their jobs stay)");
    rm_cmd->add_option("NAME", names, "Schedule names")->required();
    auto* pause_cmd = app.add_subcommand("pause", "Stop firing schedules until resume");
    pause_cmd->add_option("NAME", names, "Schedule names")->required();
    auto* resume_cmd =
        app.add_subcommand("resume", "Fire schedules again, from their next tick after now");
    resume_cmd->add_option("NAME", names, "Schedule names")->required();
    auto* next_cmd = app.add_subcommand("next", "Print a schedule's next tick times");
    next_cmd->add_option("NAME", o.name, "Schedule name")->required();
    next_cmd->add_option("--count", count, "How many (default 5)");
    cli::describe_tool(app, footer);
    cli::parse_command_line(app, argc, argv);
    auto config = cli::finish_options(app, common, "schedule");
    auto server = cli::resolve_server(common, config, "schedule");
    // Names are checked before any command is sent.
    if (ls_cmd->parsed() && !queue_name.empty()) check_queue_name(queue_name);
    if (next_cmd->parsed()) {
        check_schedule_name(o.name);
        if (count < 1 || count > max_count)
            throw UsageError(fmt::format("--count: {} is out of range 1..{}", count, max_count));
    }
    std::optional<PreparedAdd> prepared;
    if (add_cmd->parsed()) prepared = prepare_add(o);
    // rm, pause and resume report a malformed name as unknown, and go on with the others.
    std::size_t bad_names = 0;
    std::vector<std::string> valid;
    for (const auto& name : names) {
        if (auto problem = job_id_problem(name)) {
            ++bad_names;
            log::error(fmt::format("no such schedule: '{}' (invalid name: {})", printable(name),
                                   *problem));
        } else {
            valid.push_back(name);
        }
    }

    auto connection = cli::connect(server);
    int status = 0;
    if (prepared) status = add(connection, server.namespace_name, *prepared);
    if (ls_cmd->parsed()) status = ls(connection, server.namespace_name, queue_name, json);
    if (rm_cmd->parsed()) status = rm(connection, server.namespace_name, valid);
    if (pause_cmd->parsed()) status = set_paused(connection, server.namespace_name, valid, true);
    if (resume_cmd->parsed()) status = set_paused(connection, server.namespace_name, valid, false);
    if (next_cmd->parsed()) status = next(connection, server.namespace_name, o.name, count);
    cli::flush_stdout();
    return bad_names > 0 ? 1 : status;
}

}  // namespace
}  // namespace workq::schedule_tool

int main(int argc, char** argv) {
    return workq::cli::run("workq-schedule", argc, argv, workq::schedule_tool::schedule_main);
}
