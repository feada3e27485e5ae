// workq-enqueue [OPTIONS] QUEUE [PAYLOAD...]
//
// Submits jobs: each PAYLOAD argument is one job; without any, stdin is read (one job per
// line, -0 for NUL-separated records, --whole for all of stdin as one job). Prints each job's
// id on stdout, one per line, in input order, once the server has it.
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <limits>
#include <set>
#include <utility>

#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "cli/runner.hpp"
#include "cli/server.hpp"
#include "payload_reader.hpp"
#include "queue/client.hpp"
#include "submitter.hpp"
#include "util/bytes.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/time.hpp"
#include "waiter.hpp"

namespace workq::enqueue {
namespace {

constexpr long long max_priority = 1'000'000;
constexpr std::size_t max_unique_key = 512;
constexpr long long max_replicas = 1000;  // far beyond any deployment; WAIT takes any count

constexpr const char* footer = R"(Output:
  stdout: the id of each job, one per line, in input order, printed once the server holds the
  job; nothing else. With --wait, stdout holds only the jobs' results (input order) and the
  ids go to stderr. -q/--quiet silences diagnostics only: stdout is data and keeps the ids
  (in cron, send them to /dev/null).

Input:
  Each PAYLOAD argument is one job (use -- before a payload that starts with '-'). Without
  arguments stdin is read: one job per line ('\n' is not part of the payload; empty lines are
  skipped; a last line without '\n' is a job); -0 splits on NUL instead; --whole makes all of
  stdin, bytes exactly, one job. Payloads are bytes: any encoding, any content.

Environment:
  WORKQ_REDIS_URL, WORKQ_REDIS_PASSWORD, WORKQ_NAMESPACE, WORKQ_CONFIG, REDIS_URL
  Config: [enqueue] table; each key is a long option, e.g. max-attempts = 5; or
  WORKQ_ENQUEUE_<KEY> in the environment (WORKQ_ENQUEUE_MAX_ATTEMPTS=5), over the file.

Exit status:
  0    every job is enqueued (or, with --wait, every job succeeded)
  1    with --wait: a job ended dead or cancelled; with --replicas: fewer replicas than asked
       acknowledged some jobs in time (their ids are printed: the jobs exist; stderr says
       how many replicas answered)
  2    usage error: bad option, queue name, id, duration, time; a payload over the limit
       (in a stream: the jobs before it are enqueued and their ids printed)
  3    cannot reach or talk to Redis (every id already printed is enqueued)
  124  --wait-timeout passed

Examples:
  workq-enqueue mail alice@example.com bob@example.com
  find /data -name '*.csv' | workq-enqueue import
  find /data -name '*.csv' -print0 | workq-enqueue -0 import
  workq-enqueue --whole render < page.json
  workq-enqueue --delay 10m --max-attempts 3 reports monthly
  workq-enqueue --id "invoice-$N" billing "$N"          # safe to re-run after a crash
  result=$(workq-enqueue --wait --wait-timeout 1m thumbs img.png)
  workq-enqueue --replicas 1 payments "$order"          # on a replica too, or exit 1
  # crontab: nightly backup, at most one pending at a time, silent unless it fails
  0 3 * * * workq-enqueue -q --unique nightly backup all
)";

struct Options {
    std::string queue;
    std::vector<std::string> payloads;
    long long priority = 0;
    std::string delay;
    std::string at;
    long long max_attempts = 10;
    std::string timeout;
    std::string unique;
    std::string id;
    bool wait = false;
    std::string wait_timeout;
    long long replicas = 0;
    std::string replicas_timeout = "1s";
    bool nul = false;
    bool whole = false;
    std::string max_payload = "1MiB";
};

// Checks that run on a value wherever it comes from: the command line, or the [enqueue] table
// of the config file, whose errors then name the file and line ("config.toml:3: [enqueue]
// delay: --delay: invalid duration '5x' ...").
CLI::Validator duration_check() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            if (parse_duration(text)) return {};
            return fmt::format(
                "invalid duration '{}' (expected e.g. 500ms, 30s, 1.5s, 5m, 2h, 1d, 1h30m or "
                "seconds)",
                printable(text));
        },
        "DURATION");
}

CLI::Validator time_check() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            if (parse_time(text)) return {};
            return fmt::format(
                "invalid time '{}' (expected RFC 3339 such as 2026-11-25T10:00:00Z, a local "
                "time such as 2026-11-25T10:00:00 that exists, or epoch seconds)",
                printable(text));
        },
        "TIME");
}

CLI::Validator integer_check(long long min, long long max) {
    return CLI::Validator(
        [min, max](std::string& text) -> std::string {
            long long value = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (ec == std::errc{} && end == text.data() + text.size() && value >= min &&
                value <= max)
                return {};
            return max == std::numeric_limits<long long>::max()
                       ? fmt::format("'{}' is not a whole number >= {}", printable(text), min)
                       : fmt::format("'{}' is not a whole number from {} to {}", printable(text),
                                     min, max);
        },
        "INT");
}

CLI::Validator size_check() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            auto size = parse_size(text);
            if (size && *size > 0) return {};
            return fmt::format("invalid size '{}' (e.g. 1048576, 512KiB, 1MiB)", printable(text));
        },
        "SIZE");
}

void define(CLI::App& app, Options& o) {
    app.add_option("QUEUE", o.queue, "Queue to submit to")->required();
    app.add_option("PAYLOAD", o.payloads, "One job per argument; without any, read stdin");
    app.add_option("--priority", o.priority, "Higher runs first, -1000000..1000000 (default 0)")
        ->check(integer_check(-max_priority, max_priority));
    app.add_option("--delay", o.delay, "Run no earlier than this from now: 30s, 5m, 1h30m")
        ->check(duration_check());
    app.add_option("--at", o.at,
                   "Run no earlier than this time: RFC 3339 (without a zone: local time, as "
                   "date(1) reads it) or epoch seconds")
        ->check(time_check());
    app.add_option("--max-attempts", o.max_attempts,
                   "Total runs before the job is dead, >= 1 (default 10)")
        ->check(integer_check(1, std::numeric_limits<long long>::max()));
    app.add_option("--timeout", o.timeout,
                   "Per-run time limit for this job, overriding the worker's (0: none)")
        ->check(duration_check());
    app.add_option("--unique", o.unique,
                   "While a job with this key is scheduled, waiting or running, make no other: "
                   "print its id")
        ->check(cli::not_empty());
    app.add_option("--id", o.id,
                   "Use this id; if a job with it exists in any state, make nothing, print the id")
        ->check(cli::not_empty());
    app.add_flag("--wait", o.wait, "Block until the jobs end; print their results instead of ids");
    app.add_option("--wait-timeout", o.wait_timeout,
                   "With --wait: give up after this long (exit 124; 0: never, the default)")
        ->check(duration_check());
    app.add_option("--replicas", o.replicas,
                   "Wait until this many replicas have the jobs before printing their ids; "
                   "fewer within --replicas-timeout: exit 1 (default 0: no wait)")
        ->check(integer_check(0, max_replicas));
    app.add_option("--replicas-timeout", o.replicas_timeout,
                   "With --replicas: how long to wait for the replicas (default 1s; 0: no limit)")
        ->check(duration_check());
    app.add_flag("-0,--null", o.nul, "Read NUL-separated payloads from stdin");
    app.add_flag("--whole", o.whole, "All of stdin, bytes exactly, is one job");
    app.add_option("--max-payload", o.max_payload, "Largest payload accepted (default 1MiB)")
        ->check(size_check());
}

// `--delay 10 minutes mail x` reads as --delay 10, queue "minutes": a unit word where the queue
// goes, after a bare number, is that mistake rather than a queue of that name.
void refuse_unit_as_queue(const Options& o) {
    static const std::set<std::string, std::less<>> units{
        "ms",      "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "minute",
        "minutes", "h", "hr",  "hrs",  "hour",   "hours",   "d", "day", "days"};
    if (!units.contains(o.queue)) return;
    for (const auto& [flag, value] : {std::pair{"--delay", o.delay},
                                      {"--timeout", o.timeout},
                                      {"--wait-timeout", o.wait_timeout}})
        if (!value.empty() && value.find_first_not_of("0123456789.") == std::string::npos)
            throw UsageError(fmt::format(
                "{} {} {}: write the duration as one word ({} {}{}); '{}' would be taken as the "
                "queue",
                flag, value, o.queue, flag, value, o.queue.substr(0, o.queue == "ms" ? 2 : 1),
                o.queue));
}

queue::EnqueueOptions validate(const Options& o, std::size_t& max_payload) {
    refuse_unit_as_queue(o);
    check_queue_name(o.queue);
    queue::EnqueueOptions options;
    if (o.priority < -max_priority || o.priority > max_priority)
        throw UsageError(
            fmt::format("--priority: {} is out of range -1000000..1000000", o.priority));
    options.priority = o.priority;
    if (o.max_attempts < 1)
        throw UsageError(fmt::format("--max-attempts: {} is less than 1", o.max_attempts));
    options.max_attempts = o.max_attempts;
    if (!o.delay.empty()) options.delay = parse_duration_or_throw(o.delay, "--delay");
    if (!o.at.empty()) {
        if (!o.delay.empty()) throw UsageError("--at and --delay cannot be used together");
        auto at = parse_time(o.at);
        if (!at)
            throw UsageError(
                fmt::format("--at: invalid time '{}' (expected RFC 3339 such as "
                            "2026-11-25T10:00:00Z, a local time such as 2026-11-25T10:00:00 "
                            "that exists, or epoch seconds)",
                            printable(o.at)));
        options.due_at_ms = *at;
    }
    if (!o.timeout.empty()) options.timeout = parse_duration_or_throw(o.timeout, "--timeout");
    if (!o.unique.empty()) {
        if (o.unique.size() > max_unique_key)
            throw UsageError(
                fmt::format("--unique: the key is longer than {} bytes", max_unique_key));
        options.unique_key = o.unique;
    }
    if (!o.id.empty()) {
        check_job_id(o.id);
        options.caller_ids = true;
    }
    if (o.nul && o.whole) throw UsageError("-0/--null and --whole cannot be used together");
    if ((o.nul || o.whole) && !o.payloads.empty())
        throw UsageError(fmt::format("{} reads stdin, but payloads were given as arguments",
                                     o.nul ? "-0" : "--whole"));
    if (!o.wait_timeout.empty() && !o.wait) throw UsageError("--wait-timeout needs --wait");
    auto size = parse_size(o.max_payload);
    if (!size || *size == 0)
        throw UsageError(
            fmt::format("--max-payload: invalid size '{}' (e.g. 1048576, 512KiB, 1MiB)",
                        printable(o.max_payload)));
    max_payload = *size;
    for (std::size_t i = 0; i < o.payloads.size(); ++i)
        if (o.payloads[i].size() > max_payload)
            throw UsageError(
                fmt::format("payload {} is {} bytes, over the limit of {} (--max-payload); nothing "
                            "was enqueued",
                            i + 1, o.payloads[i].size(), max_payload));
    if (!o.id.empty() && o.payloads.size() > 1)
        throw UsageError("--id names one job, but several payloads were given");
    options.notify = o.wait;
    return options;
}

// --replicas fell short for `jobs` job(s): say so (the ids are printed; the jobs exist).
void report_shortfall(std::size_t jobs, long long fewest, const Options& o) {
    log::error(fmt::format(
        "--replicas {}: {} job(s) reached only {} replica(s) within {}; they are enqueued (ids "
        "printed) but could be lost if the master fails before they reach more",
        o.replicas, jobs, fewest, o.replicas_timeout));
}

// The exit code of --wait's outcome.
// (A timeout's message, naming the jobs still pending, is the waiter's.)
int wait_exit_code(WaitOutcome outcome) {
    switch (outcome) {
        case WaitOutcome::all_succeeded:
            return to_int(ExitCode::success);
        case WaitOutcome::some_failed:
            return to_int(ExitCode::failed);
        case WaitOutcome::timed_out:
            return to_int(ExitCode::wait_timeout);
    }
    return to_int(ExitCode::success);
}

// A shortfall of replicas makes a success exit 1; other outcomes keep their code.
int with_shortfall(int code, bool under_replicated) {
    return code == to_int(ExitCode::success) && under_replicated ? to_int(ExitCode::failed) : code;
}

// The one job of --id: its payload read whole first (the id's reservation must not lapse
// while a slow producer writes), then made unless a job with the id exists in any queue of
// the namespace (queue::enqueue_with_id). Prints the id either way.
int enqueue_caller_id(redis::Connection& connection, const queue::NamespaceKeys& namespace_keys,
                      const queue::QueueKeys& keys, const queue::EnqueueOptions& options,
                      const Options& o, std::size_t max_payload, std::optional<Millis> wait_timeout,
                      Millis replicas_timeout) {
    std::string payload;
    if (!o.payloads.empty()) {
        payload = o.payloads.front();
    } else {
        if (!o.whole && ::isatty(STDIN_FILENO))
            log::info("reading the job from stdin, one line (Ctrl-D ends)");
        PayloadReader reader(STDIN_FILENO,
                             o.whole ? Framing::whole
                             : o.nul ? Framing::nul
                                     : Framing::lines,
                             max_payload);
        auto status = reader.next(payload);
        if (status == PayloadReader::Status::end) {
            log::info("no jobs: stdin held no payload");
            return to_int(ExitCode::success);
        }
        if (status == PayloadReader::Status::too_large)
            throw UsageError(
                fmt::format("stdin is over the payload limit of {} bytes "
                            "(--max-payload); nothing was enqueued",
                            max_payload));
        std::string more;
        if (reader.next(more) != PayloadReader::Status::end)
            throw UsageError("--id names one job, but stdin held several; nothing was enqueued");
    }
    if (o.replicas > 0) connection.begin_durable_writes();
    auto placed =
        queue::enqueue_with_id(connection, namespace_keys, keys, options, {o.id, payload});
    // People at a terminal learn that nothing was made, or that a queue is new (a typo makes
    // one); scripts have the id on stdout anyway.
    bool stderr_terminal = ::isatty(STDERR_FILENO) == 1;
    if (placed.status == queue::EnqueueStatus::existing)
        log::info(
            stderr_terminal
                ? fmt::format("exists: {} (a job with this --id exists in queue {}; "
                              "nothing was made)",
                              o.id, placed.queue)
                : fmt::format("job {} exists in queue {}: nothing was made", o.id, placed.queue));
    else if (placed.created_queue && stderr_terminal)
        log::info(fmt::format("new queue {}", o.queue));
    bool under_replicated = false;
    if (o.replicas > 0) {
        auto got = connection.wait_for_replicas(o.replicas, replicas_timeout);
        under_replicated = got < o.replicas;
        if (under_replicated) report_shortfall(1, got, o);
    }
    if (!o.wait) {
        cli::write_stdout(o.id + "\n");
        cli::flush_stdout();
        return with_shortfall(to_int(ExitCode::success), under_replicated);
    }
    if (placed.status == queue::EnqueueStatus::created) log::info("enqueued " + o.id);
    std::vector<std::string> ids{o.id};
    auto outcome = wait_for_jobs(connection, queue::QueueKeys(namespace_keys.name(), placed.queue),
                                 namespace_keys.name(), ids, wait_timeout,
                                 o.nul ? Separator::nul : Separator::newline);
    return with_shortfall(wait_exit_code(outcome), under_replicated);
}

int enqueue_main(int argc, char** argv) {
    CLI::App app{"Submit jobs to a workq queue.", "workq-enqueue"};
    cli::CommonOptions common;
    Options o;
    define(app, o);
    cli::add_common_options(app, common);
    cli::describe_tool(app, footer);
    cli::parse_command_line(app, argc, argv);
    auto config = cli::finish_options(app, common, "enqueue");
    auto server = cli::resolve_server(common, config, "enqueue");

    std::size_t max_payload = 0;
    auto options = validate(o, max_payload);
    std::optional<Millis> wait_timeout;
    if (!o.wait_timeout.empty())
        wait_timeout = parse_duration_or_throw(o.wait_timeout, "--wait-timeout");
    if (wait_timeout && wait_timeout->count() == 0) wait_timeout.reset();  // 0: none (contract §2)
    if (app.get_option("--replicas-timeout")->count() > 0 && o.replicas == 0)
        throw UsageError("--replicas-timeout needs --replicas");
    auto replicas_timeout = parse_duration_or_throw(o.replicas_timeout, "--replicas-timeout");

    // Ids (or --wait's results) that cannot be printed are jobs nobody can find: refuse before
    // anything is made.
    if (cli::was_closed_at_start(STDOUT_FILENO))
        throw Error(
            fmt::format("cannot write to stdout (it is closed): the {} would be lost; "
                        "nothing was enqueued (to drop them: >/dev/null)",
                        o.wait ? "results" : "ids of the jobs"));

    auto connection = cli::connect(server);
    queue::NamespaceKeys namespace_keys(server.namespace_name);
    queue::QueueKeys keys(server.namespace_name, o.queue);

    std::vector<std::string> ids;
    auto separator = o.nul ? Separator::nul : Separator::newline;
    // People at a terminal learn that nothing was made; scripts have the id on stdout anyway.
    bool stderr_terminal = ::isatty(STDERR_FILENO) == 1;
    auto on_id = [&](const std::string& id, Submitter::Made made) {
        if (made == Submitter::Made::existing && stderr_terminal)
            log::info(fmt::format("exists: {} ({}; nothing was made)", id,
                                  o.id.empty() ? "a live job holds this --unique key"
                                               : "a job with this --id exists"));
        if (o.wait) {
            ids.push_back(id);
            log::info("enqueued " + id);
        } else {
            cli::write_stdout(id);
            cli::write_stdout("\n");
        }
    };
    if (!o.id.empty())
        return enqueue_caller_id(connection, namespace_keys, keys, options, o, max_payload,
                                 wait_timeout, replicas_timeout);
    Submitter submitter(connection, namespace_keys, keys, options, on_id);
    if (o.replicas > 0) submitter.require_replicas(o.replicas, replicas_timeout);

    std::size_t read = 0;
    std::size_t lines_read = 0;  // lines (or NUL records) of stdin up to the last job read
    try {
        if (!o.payloads.empty()) {
            for (auto& payload : o.payloads) {
                ++read;
                submitter.add(std::move(payload));
            }
        } else {
            if (!o.whole && ::isatty(STDIN_FILENO))
                log::info("reading jobs from stdin, one per line (Ctrl-D ends)");
            PayloadReader reader(STDIN_FILENO,
                                 o.whole ? Framing::whole
                                 : o.nul ? Framing::nul
                                         : Framing::lines,
                                 max_payload);
            // Jobs already read go to the server before we block on a slow producer.
            reader.on_idle([&] {
                submitter.finish();
                cli::flush_stdout();
            });
            std::string payload;
            for (;;) {
                auto status = reader.next(payload);
                if (status == PayloadReader::Status::end) break;
                if (status == PayloadReader::Status::too_large) {
                    submitter.finish();
                    cli::flush_stdout();
                    throw UsageError(
                        fmt::format("{} {} of stdin is over the payload limit of {} bytes "
                                    "(--max-payload); the {} job(s) "
                                    "before it are enqueued, nothing after it was read",
                                    o.whole ? "input"
                                    : o.nul ? "record"
                                            : "line",
                                    reader.input_number(), max_payload, submitter.acknowledged()));
                }
                ++read;
                lines_read = reader.input_number();
                submitter.add(std::move(payload));
                cli::flush_stdout();
            }
        }
        submitter.finish();
        cli::flush_stdout();
        if (submitter.created_queue() && stderr_terminal)
            log::info(fmt::format("new queue {} (a typo? workq-queue rm {} removes it)", o.queue,
                                  o.queue));
    } catch (const RedisError& error) {
        cli::flush_stdout();
        // Lines, so that a script can resume where the input was: blank lines hold no job.
        std::string where =
            lines_read > 0 && !o.whole
                ? fmt::format(" from {} {}(s) of stdin", lines_read, o.nul ? "record" : "line")
                : "";
        // With --wait the ids went to stderr at info level, which -q hides: name them here.
        std::string which = "their ids are on stdout";
        if (o.wait) {
            which = "their ids:";
            for (const auto& id : ids)
                which += " " + id;
        }
        throw RedisError(fmt::format("{}; read {} job(s){}, enqueued {} ({})", error.what(), read,
                                     where, submitter.acknowledged(), which));
    }
    if (read == 0) {
        log::info("no jobs: stdin held no payload");
        return to_int(ExitCode::success);
    }
    bool under_replicated = submitter.under_replicated() > 0;
    if (under_replicated)
        report_shortfall(submitter.under_replicated(), *submitter.fewest_replicas(), o);
    if (!o.wait) return with_shortfall(to_int(ExitCode::success), under_replicated);
    return with_shortfall(wait_exit_code(wait_for_jobs(connection, keys, server.namespace_name, ids,
                                                       wait_timeout, separator)),
                          under_replicated);
}

}  // namespace
}  // namespace workq::enqueue

int main(int argc, char** argv) {
    return workq::cli::run("workq-enqueue", argc, argv, workq::enqueue::enqueue_main);
}
