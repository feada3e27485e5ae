#include "settings.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <sstream>
#include <string_view>

#include "util/bytes.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/hardening.hpp"
#include "util/names.hpp"

namespace workq::work {

const char* const help_footer = R"(How it works:
  For each job, COMMAND runs directly (no shell) in its own process group with the payload on
  stdin (or, with --arg, as its last argument). Its stdout is the job's result, its stderr is
  relayed here tagged with the job id. Exit 0: succeeded. An exit code listed in
  --permanent-exit-codes (default 100): dead at once. Any other exit, a signal or a timeout:
  retried after --backoff while attempts remain, else dead.
  Handler environment: the worker's, minus WORKQ_REDIS_PASSWORD, WORKQ_REDIS_URL and a
  REDIS_URL that holds a password, plus WORKQ_JOB_ID, WORKQ_QUEUE, WORKQ_ATTEMPT, WORKQ_MAX_ATTEMPTS, WORKQ_WORKER_ID and
  WORKQ_STATE_DIR (a directory per slot, kept from job to job).

Persistent handlers (--persistent):
  COMMAND starts once per slot; per job it reads one JSON line on stdin and answers one:
    -> {"id":"...","queue":"...","attempt":1,"payload":"..."}   ("payload_base64" if not UTF-8)
    <- {"id":"...","ok":true,"result":"..."}
    <- {"id":"...","ok":false,"error":"...","retry":false}      (retry defaults to true)
  A crash, a bad reply or no reply within --timeout fails that job and restarts the handler;
  --recycle-jobs/--recycle-age/--recycle-errors start a fresh one between jobs.

Lifecycle:
  initializing -> starting (--on-start) -> running <-> paused -> draining -> stopped; error.
  paused: SIGTSTP (SIGCONT resumes), a failing --health-cmd, or the breaker: after
  --pause-after-failures N failed jobs in a row, --failure-cooldown (doubling on each trip
  before a success, at most 10m), then --health-cmd if given; claims nothing, finishes jobs.

Signals:
  SIGTERM, SIGINT  drain: claim nothing more, let running jobs finish within --shutdown-timeout,
                   then stop their handlers and release the jobs (attempt not counted); exit 0.
                   A second one skips the wait.
  SIGHUP, SIGUSR1  reload the config file: concurrency, timeouts, backoff, lease, hooks,
                   --claim-ahead, --pause-after-failures, --failure-cooldown.
  SIGTSTP/SIGCONT  pause / resume claiming.
  SIGUSR2          logged and ignored.

HTTP (--http ADDR; PORT alone is 127.0.0.1, 0.0.0.0:PORT for a pod):
  GET /livez    200 unless the worker is in error        GET /readyz  200 only while running
  GET /metrics  Prometheus text: jobs by queue and outcome, slots, state, job durations
  GET /         this worker as JSON                      anything else: 404 (405, 400)

Output:
  Nothing on stdout. Logs on stderr, one line per event (--log-format json for machines).
  -q hides the worker's own lines but errors; handlers' stderr is still relayed.

Environment:
  WORKQ_REDIS_URL, WORKQ_REDIS_PASSWORD, WORKQ_NAMESPACE, WORKQ_CONFIG, REDIS_URL
  Config: [work] table, or WORKQ_WORK_<KEY> over it (WORKQ_WORK_CONCURRENCY=4,
  WORKQ_WORK_SHUTDOWN_TIMEOUT=20s); SIGHUP re-reads the file, not the environment.

Exit status:
  0    stopped cleanly (signal, --max-jobs, --max-runtime, or a --burst with no dead job)
  1    --burst: a job it ran went dead
  2    usage error: bad option, queue name, duration, config file
  3    cannot reach Redis at start
  4    the worker itself failed: --on-start failed, COMMAND cannot be executed, fatal error

Examples:
  workq-work mail -- ./send-mail.sh
  workq-work -c 8 --timeout 2m thumbs -- convert - -resize 128x128 png:-
  workq-work --burst import -- ./import-one        # work off what is due, then exit
  workq-work urgent,normal,bulk -- ./handler       # strict priority between queues
  workq-work --arg files -- gzip -9                # payload as the last argument
  workq-work --persistent -c 4 text -- ./handler.py  # one long-lived handler per slot
)";

namespace {

Millis duration_option(const std::string& text, std::string_view flag) {
    return parse_duration_or_throw(text, flag);
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::stringstream stream(text);
    for (std::string part; std::getline(stream, part, separator);)
        parts.push_back(part);
    if (!text.empty() && text.back() == separator) parts.emplace_back();
    return parts;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> reloadable_values(const Settings& s) {
    std::string codes;
    for (int code : s.permanent_exit_codes)
        codes += (codes.empty() ? "" : ",") + std::to_string(code);
    auto quoted = [](const std::string& text) {
        return text.empty() ? std::string("(none)") : "'" + printable(text, 60) + "'";
    };
    return {{"concurrency", std::to_string(s.concurrency)},
            {"claim-ahead", std::to_string(s.claim_ahead)},
            {"timeout", format_duration(s.timeout)},
            {"kill-grace", format_duration(s.kill_grace)},
            {"lease", format_duration(s.lease)},
            {"backoff", format_duration(s.backoff.base) + "," + format_duration(s.backoff.cap)},
            {"permanent-exit-codes", codes},
            {"shutdown-timeout", format_duration(s.shutdown_timeout)},
            {"on-start", quoted(s.on_start)},
            {"on-stop", quoted(s.on_stop)},
            {"health-cmd", quoted(s.health_cmd)},
            {"health-interval", format_duration(s.health_interval)},
            {"pause-after-failures", std::to_string(s.pause_after_failures)},
            {"failure-cooldown", format_duration(s.failure_cooldown)},
            {"max-result", std::to_string(s.max_result)},
            {"result-ttl", format_duration(s.result_ttl)}};
}

std::vector<std::string> settings_warnings(const Settings& s) {
    std::vector<std::string> warnings;
    // The budget holds the kill grace (SIGTERM at budget - grace): at or below the grace, the
    // handlers are stopped as soon as the drain begins.
    if (s.shutdown_timeout <= s.kill_grace)
        warnings.push_back(fmt::format(
            "--shutdown-timeout {} is not longer than --kill-grace {}: on SIGTERM running jobs get "
            "no time to finish (their handlers are stopped at once and the jobs released); give "
            "--shutdown-timeout more than --kill-grace",
            format_duration(s.shutdown_timeout), format_duration(s.kill_grace)));
    return warnings;
}

Settings parse_settings(int argc, char** argv) {
    Settings s;
    CLI::App app{"Run a worker: claim jobs from the queues and run COMMAND for each.",
                 "workq-work"};
    std::string queues_text;
    std::string timeout = "5m", kill_grace = "3s", lease = "30s", backoff = "10s,1h",
                shutdown_timeout = "25s";
    std::string health_interval = "30s", failure_cooldown = "30s", max_runtime, max_result = "1MiB",
                result_ttl = "24h", recycle_age, summary_interval = "1m";
    std::string permanent = "100";
    std::string http_address;

    app.add_option("QUEUES", queues_text, "Queue, or comma-separated queues in priority order")
        ->required();
    app.add_option("COMMAND", s.command, "The handler command and its arguments, after --");
    app.add_option("-c,--concurrency", s.concurrency, "Jobs run at once (default 1)");
    app.add_option("--claim-ahead", s.claim_ahead,
                   "Hold up to N leased jobs beyond the busy slots, so a slot that frees starts "
                   "its next job at once (default 0: off; at most -c; opt-in: held jobs are not "
                   "free for another idle worker)");
    app.add_option("--timeout", timeout, "Time limit per job run (default 5m; 0: none)");
    app.add_option("--kill-grace", kill_grace,
                   "After SIGTERM, wait this long before SIGKILL (default 3s)");
    app.add_option("--lease", lease, "Lease per claimed job, renewed while it runs (default 30s)");
    app.add_option("--backoff", backoff,
                   "Retry delay BASE[,CAP]: about BASE*2^(n-1), capped (default 10s,1h)");
    app.add_option("--permanent-exit-codes", permanent,
                   "Exit codes that mean dead at once (default 100)");
    app.add_flag("--arg", s.payload_as_argument,
                 "Pass the payload as COMMAND's last argument instead of stdin");
    app.add_flag("--burst", s.burst,
                 "Work off every due job and the retries of those it ran, then exit (1 if any "
                 "went dead)");
    app.add_option("--max-jobs", s.max_jobs, "Exit 0 after this many jobs");
    app.add_option("--max-runtime", max_runtime, "Drain and exit 0 after running this long");
    app.add_option("--shutdown-timeout", shutdown_timeout,
                   "On SIGTERM, the whole time allowed to finish running jobs (default 25s)");
    app.add_option("--on-start", s.on_start, "Shell command run before claiming; failure: exit 4");
    app.add_option("--on-stop", s.on_stop,
                   "Shell command run before exiting (also after an error; not after a failed "
                   "--on-start)");
    app.add_option("--health-cmd", s.health_cmd,
                   "Shell command checked every --health-interval; failing: paused");
    app.add_option("--health-interval", health_interval,
                   "How often --health-cmd runs (default 30s)");
    app.add_option("--pause-after-failures", s.pause_after_failures,
                   "After N failed jobs in a row, claim nothing for --failure-cooldown (default "
                   "0: off)");
    app.add_option("--failure-cooldown", failure_cooldown,
                   "Pause after --pause-after-failures trips; doubles per trip up to 10m "
                   "(default 30s)");
    app.add_option("--name", s.name,
                   "Worker name: registry and state directory (default: a fresh id)")
        ->check(cli::not_empty());
    app.add_option("--max-result", max_result,
                   "Largest result kept; more is cut and marked (default 1MiB)");
    app.add_option("--result-ttl", result_ttl,
                   "How long a succeeded job and its result stay visible (default 24h)");
    app.add_option("--summary-interval", summary_interval,
                   "Log a summary line this often (default 1m; 0: only the final one)");
    auto* http_option = app.add_option("--http", http_address,
                                       "Serve /livez, /readyz, /metrics and / at ADDR: a port "
                                       "alone (127.0.0.1), ip:port or [ipv6]:port");
    app.add_flag("--persistent", s.persistent,
                 "Start COMMAND once per slot and feed it JSON lines");
    app.add_option("--recycle-jobs", s.recycle_jobs,
                   "--persistent: restart a handler after this many jobs");
    app.add_option("--recycle-age", recycle_age, "--persistent: restart a handler after this long");
    app.add_option("--recycle-errors", s.recycle_errors,
                   "--persistent: restart a handler after this many failures");
    cli::add_common_options(app, s.common);
    app.get_option("--quiet")->description(
        "Print only errors of the worker's own; handlers' stderr is still relayed "
        "(--log-level error hides it)");
    cli::describe_tool(app, help_footer);

    // COMMAND and its arguments are taken verbatim after the first `--`: CLI11 would read
    // `[a,b]` in them as a list and mangle `printf '[%s]'`.
    int options_end = argc;
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]) == "--") {
            options_end = i;
            break;
        }
    cli::parse_command_line(app, options_end, argv);
    if (options_end < argc) {
        if (!s.command.empty())
            throw UsageError(
                fmt::format("unexpected argument '{}' before -- (queues are one "
                            "comma-separated argument)",
                            printable(s.command.front())));
        s.command.assign(argv + options_end + 1, argv + argc);
    }
    // What the command line set is pinned: a reload of the file cannot change it (nor what the
    // environment set, which ranks above the file too).
    for (const CLI::Option* option : app.get_options())
        if (option->count() > 0 && !option->get_lnames().empty())
            s.pinned[option->get_lnames().front()] = "--" + option->get_lnames().front();
    std::map<std::string, std::string> from_environment;
    s.config = cli::finish_options(app, s.common, "work", &from_environment);
    s.pinned.insert(from_environment.begin(), from_environment.end());

    // An empty QUEUES splits into no names at all: refuse it as the empty name it is (a worker
    // of no queue would wait for nothing, forever).
    if (queues_text.empty()) check_queue_name(queues_text);
    for (const auto& queue : split(queues_text, ',')) {
        check_queue_name(queue);
        s.queues.push_back(queue);
    }
    if (s.concurrency < 1 || s.concurrency > 10'000)
        throw UsageError(fmt::format("--concurrency: {} is not from 1 to 10000", s.concurrency));
    if (s.claim_ahead < 0 || s.claim_ahead > s.concurrency)
        throw UsageError(fmt::format(
            "--claim-ahead: {} is not from 0 (off) to the concurrency, {} (jobs held beyond the "
            "busy slots)",
            s.claim_ahead, s.concurrency));
    s.timeout = duration_option(timeout, "--timeout");
    s.kill_grace = duration_option(kill_grace, "--kill-grace");
    s.lease = duration_option(lease, "--lease");
    if (s.lease < Millis(100)) throw UsageError("--lease: must be at least 100ms");
    auto parsed_backoff = queue::parse_backoff(backoff);
    if (!parsed_backoff)
        throw UsageError(
            fmt::format("--backoff: invalid '{}' (expected BASE[,CAP] such as 10s,1h, BASE <= CAP)",
                        printable(backoff)));
    s.backoff = *parsed_backoff;
    s.permanent_exit_codes.clear();
    for (const auto& code : split(permanent, ',')) {
        try {
            std::size_t used = 0;
            int value = std::stoi(code, &used);
            if (used != code.size() || value < 0 || value > 255) throw std::invalid_argument(code);
            s.permanent_exit_codes.insert(value);
        } catch (const std::exception&) {
            throw UsageError(fmt::format(
                "--permanent-exit-codes: '{}' is not an exit code from 0 to 255", printable(code)));
        }
    }
    if (s.permanent_exit_codes.contains(0))
        throw UsageError("--permanent-exit-codes: 0 means success, it cannot be permanent");
    s.shutdown_timeout = duration_option(shutdown_timeout, "--shutdown-timeout");
    s.health_interval = duration_option(health_interval, "--health-interval");
    if (s.health_interval < Millis(100))
        throw UsageError("--health-interval: must be at least 100ms");
    if (s.pause_after_failures < 0 || s.pause_after_failures > 1'000'000)
        throw UsageError(fmt::format("--pause-after-failures: {} is not from 0 (off) to 1000000",
                                     s.pause_after_failures));
    s.failure_cooldown = duration_option(failure_cooldown, "--failure-cooldown");
    if (s.failure_cooldown < Millis(100))
        throw UsageError("--failure-cooldown: must be at least 100ms");
    if (!max_runtime.empty()) s.max_runtime = duration_option(max_runtime, "--max-runtime");
    if (s.max_jobs < 0) throw UsageError("--max-jobs: must not be negative");
    auto size = parse_size(max_result);
    if (!size)
        throw UsageError(fmt::format("--max-result: invalid size '{}'", printable(max_result)));
    s.max_result = *size;
    s.result_ttl = duration_option(result_ttl, "--result-ttl");
    if (!recycle_age.empty()) s.recycle_age = duration_option(recycle_age, "--recycle-age");
    s.summary_interval = duration_option(summary_interval, "--summary-interval");
    if (s.summary_interval.count() > 0 && s.summary_interval < Millis(100))
        throw UsageError("--summary-interval: must be 0 (off) or at least 100ms");
    if (s.recycle_jobs < 0 || s.recycle_errors < 0)
        throw UsageError("--recycle-jobs/--recycle-errors: must not be negative");
    if (!s.name.empty()) {
        if (auto problem = job_id_problem(s.name))
            throw UsageError(
                fmt::format("--name: invalid worker name '{}': {}", printable(s.name), *problem));
    }
    if (http_option->count() > 0 || !http_address.empty())
        s.http = http::parse_listen_address(http_address, "--http");
    if (s.command.empty() || s.command.front().empty())
        throw UsageError("COMMAND is missing (put it after --)");
    if (s.persistent && s.payload_as_argument)
        throw UsageError(
            "--arg and --persistent cannot be used together: a persistent handler gets each "
            "payload in its JSON request line");
    return s;
}

void check_descriptor_budget(long long concurrency) {
    // Per slot: a handler's stdin, stdout and stderr pipes (our ends). Fixed: stdio, the event
    // loop's own, two Redis connections, the guard's pipe, systemd's socket, a hook's pipes and
    // those of a handler being started, with room to spare.
    constexpr long long per_slot = 3;
    constexpr long long fixed = 64;
    auto limits = raise_fd_limit();
    if (limits.soft == 0) return;  // unknown: nothing to check against
    auto needed = fixed + per_slot * concurrency;
    if (limits.soft == RLIM_INFINITY || static_cast<rlim_t>(needed) <= limits.soft) return;
    auto soft = static_cast<long long>(limits.soft);
    auto advice = soft >= fixed + per_slot
                      ? fmt::format("raise the limit, or use --concurrency {} at most",
                                    (soft - fixed) / per_slot)
                      : std::string("raise the limit");
    throw UsageError(
        fmt::format("--concurrency {} needs about {} open files, but the limit is {} (ulimit -n; "
                    "LimitNOFILE= under systemd): {}",
                    concurrency, needed, soft, advice));
}

}  // namespace workq::work
