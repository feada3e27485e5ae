// workq-status [QUEUE...] [--json | --prometheus] [--watch[=INTERVAL]]
// workq-status [QUEUE...] --serve ADDR
// workq-status job ID... [--json]
// workq-status --check [QUEUE...] [--max-depth N] [--max-age D] [--min-workers N] [--max-dead N]
//              [--worker NAME] [--warn-max-depth N] [--warn-max-age D] [--warn-min-workers N]
//              [--warn-max-dead N] [--no-server-warnings]
//
// The one place an operator looks: queue depths and ages, workers and their health, the server
// it talks to. Readable by default, exact on request (--json, --prometheus), a verdict for
// monitoring (--check, exit 0/1/2/3 like a monitoring plugin), an exporter for Prometheus
// (--serve).
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>

#include "check.hpp"
#include "cli/input.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "cli/runner.hpp"
#include "cli/server.hpp"
#include "cli/table.hpp"
#include "http/address.hpp"
#include "job_view.hpp"
#include "render.hpp"
#include "serve.hpp"
#include "snapshot.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"
#include "util/names.hpp"

namespace workq::status {
namespace {

constexpr const char* footer = R"(Output:
  Default: the server, then per queue WAITING SCHEDULED RUNNING DEAD SUCCEEDED FAILED PER-MIN
  (succeeded in the last 60 s) OLDEST PAUSED LIMITS (workq-queue limit), then per worker its
  id, name, host, pid, state, queues, busy/concurrency, processed, failed, uptime, last heartbeat and LIVE or LOST (no
  heartbeat for 15s). Colour only at a terminal (NO_COLOR turns it off).
  --json: one document {"server", "queues": [...], "workers": [...], "exited_workers": [...]}
  (README, "workq-status").
  --prometheus: the exposition format, for node_exporter's textfile collector.
  --serve ADDR: nothing on stdout; serves GET /metrics (the --prometheus text, computed on each
  scrape; 503 with the reason when Redis cannot be read) and GET /livez (200) over HTTP until
  SIGTERM. ADDR: PORT (binds 127.0.0.1), IPV4:PORT or [IPV6]:PORT; port 0 picks a free one. The
  log line "serving http://ADDR/metrics" names the address.
  job ID...: per id its state (scheduled, waiting, running, succeeded, dead, cancelled,
  unknown), attempts, result and last error; --json: one object per line.
  --check: one line "WORKQ OK|WARNING|CRITICAL|UNKNOWN: reason | perfdata".

Exit status:
  0    success (--check: OK)
  1    an id is unknown; a queue or the workers' registry is damaged (shown, with the others);
       --serve cannot listen on ADDR (--check: WARNING)
  2    usage error (--check: CRITICAL)
  3    cannot reach Redis (--check: UNKNOWN, also for usage errors)

Examples:
  workq-status
  workq-status --watch=1s mail
  workq-status --json | jq '.queues[] | select(.dead > 0) | .name'
  workq-status --prometheus > /var/lib/node_exporter/textfile/workq.prom
  workq-status --serve 9187                            # scrape http://127.0.0.1:9187/metrics
  workq-status job "$id"
  workq-status --check --max-depth 1000 --warn-max-depth 100 --min-workers 1 mail
  workq-status --check --worker "$(hostname)-mail"     # a liveness probe
  workq-status --check --no-server-warnings --max-age 5m  # on a server without persistence
)";

struct Options {
    std::vector<std::string> queues;
    bool json = false, prometheus = false, check = false, no_server_warnings = false;
    std::string watch, serve;
    std::vector<std::string> job_ids;
    bool job_json = false;
    std::optional<long long> max_depth, warn_max_depth, min_workers, warn_min_workers, max_dead,
        warn_max_dead;
    std::string max_age, warn_max_age, worker;
};

volatile sig_atomic_t stop_watching = 0;
void on_stop_signal(int) {
    stop_watching = 1;
}

// Non-canonical, no-echo input while watching, so that 'q' quits without Enter; restored on
// every way out.
class RawTerminal {
  public:
    RawTerminal() {
        if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
        termios raw = saved_;
        raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    ~RawTerminal() {
        if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    }

  private:
    termios saved_{};
    bool active_ = false;
};

// Waits up to `interval`; false when the user asked to quit (q, Ctrl-C, SIGTERM).
bool wait_or_quit(std::chrono::milliseconds interval) {
    auto deadline = std::chrono::steady_clock::now() + interval;
    while (!stop_watching) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return true;
        pollfd input{STDIN_FILENO, POLLIN, 0};
        int ready = ::isatty(STDIN_FILENO) ? ::poll(&input, 1, static_cast<int>(left.count()))
                                           : ::poll(nullptr, 0, static_cast<int>(left.count()));
        if (ready > 0 && (input.revents & POLLIN)) {
            char key = 0;
            if (::read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' || key == 'Q')) return false;
        }
    }
    return false;
}

// At a terminal, --watch draws on the alternate screen with the cursor hidden, as top and less
// do; leaving (q, Ctrl-C, an error) gives the user back the screen they had.
class FullScreen {
  public:
    explicit FullScreen(bool active) : active_(active) {
        if (!active_) return;
        cli::write_stdout("\x1b[?1049h\x1b[?25l");
        cli::flush_stdout();
    }
    ~FullScreen() {
        if (!active_) return;
        static constexpr char restore[] = "\x1b[?25h\x1b[?1049l";
        std::fflush(stdout);
        [[maybe_unused]] auto written = ::write(STDOUT_FILENO, restore, sizeof restore - 1);
    }
    FullScreen(const FullScreen&) = delete;
    FullScreen& operator=(const FullScreen&) = delete;

  private:
    bool active_;
};

// Server warnings go to stderr too (contract §2), once per run.
void warn_about_server(const Snapshot& snapshot) {
    static bool warned = false;
    if (warned) return;
    warned = true;
    for (const auto& warning : snapshot.server.warnings)
        log::warn(warning);
}

int watch(redis::Connection& connection, const cli::ServerSettings& server, const Options& o,
          std::chrono::milliseconds interval) {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    RawTerminal terminal;
    bool screen = ::isatty(STDOUT_FILENO) == 1;
    FullScreen full_screen(screen);
    std::optional<Snapshot> previous;
    auto previous_time = std::chrono::steady_clock::now();
    do {
        auto snapshot = take_snapshot(connection, server, o.queues);
        if (!screen) warn_about_server(snapshot);
        auto now = std::chrono::steady_clock::now();
        // Below the view: throughput of the queues that moved, what the two counts mean, how to
        // quit.
        std::vector<std::string> below;
        if (!o.json && !o.prometheus) {
            double seconds = std::chrono::duration<double>(now - previous_time).count();
            std::string rates;
            if (previous && seconds > 0)
                for (const auto& q : snapshot.queues)
                    for (const auto& p : previous->queues)
                        if (p.name == q.name && q.stats.succeeded > p.stats.succeeded)
                            rates += fmt::format(
                                "  {} {:.1f}/s", q.name,
                                static_cast<double>(q.stats.succeeded - p.stats.succeeded) /
                                    seconds);
            if (previous)
                below.push_back("succeeded per second:" + (rates.empty() ? " none" : rates));
            if (!snapshot.workers.empty())
                below.push_back(
                    "SUCCEEDED: per queue; PROCESSED: jobs a worker ran since it started");
            if (screen)
                below.push_back(fmt::format("refreshing every {}; q or Ctrl-C quits",
                                            format_duration(interval)));
        }
        Screen fitted;
        if (screen && !o.json && !o.prometheus) {
            winsize size{};
            if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 &&
                size.ws_row > 0) {
                // One column short of the edge: a terminal may wrap a line that fills it.
                fitted.width = size.ws_col - 1u;
                // And one row short of the bottom: the newline after the last line would scroll.
                fitted.height = size.ws_row - 1u;
                fitted.footer_lines = below.size() + 1;  // a blank line above it
            }
        }
        std::string text = o.json         ? render_json(snapshot)
                           : o.prometheus ? render_prometheus(snapshot)
                                          : render_human(snapshot, fitted);
        if (!below.empty()) {
            text += "\n";
            for (const auto& line : below)
                text += (fitted.width > 0 ? cli::cut_to_width(line, fitted.width) : line) + "\n";
        }
        if (screen) {
            // Redraw in place: home, each line cleared to its end, the rest of the screen cleared;
            // no blank frame between two views, so no flicker.
            std::string frame = "\x1b[H";
            for (char c : text)
                frame += c == '\n' ? std::string("\x1b[K\n") : std::string(1, c);
            text = frame + "\x1b[J";
        } else {
            text += "\n";
        }
        cli::write_stdout(text);
        cli::flush_stdout();
        previous = std::move(snapshot);
        previous_time = now;
    } while (wait_or_quit(interval));
    return 0;
}

int status_main(int argc, char** argv) {
    CLI::App app{"Show queue depths, latency and worker health.", "workq-status"};
    cli::CommonOptions common;
    Options o;
    app.add_option("QUEUE", o.queues, "Queues to show (default: every queue of the namespace)");
    auto* json = app.add_flag("--json", o.json, "One JSON document");
    auto* prometheus = app.add_flag("--prometheus", o.prometheus, "Prometheus exposition format");
    json->excludes(prometheus);
    app.add_option("--watch", o.watch,
                   "Refresh every INTERVAL (default 2s) until q or Ctrl-C: --watch=1s")
        ->expected(0, 1);
    auto* check = app.add_flag("--check", o.check,
                               "Monitoring verdict: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN");
    auto group = "Check thresholds (critical; --warn-... for warning)";
    auto count = [&](const char* name, std::optional<long long>& value, const char* help) {
        app.add_option(name, value, help)->check(CLI::NonNegativeNumber)->group(group);
    };
    count("--max-depth", o.max_depth, "Waiting jobs per queue above this");
    count("--warn-max-depth", o.warn_max_depth, "WARNING level of --max-depth");
    app.add_option("--max-age", o.max_age, "Oldest waiting job older than this (0: no limit)")
        ->group(group);
    app.add_option("--warn-max-age", o.warn_max_age, "WARNING level of --max-age")->group(group);
    count("--min-workers", o.min_workers, "Fewer live workers serving the queues");
    count("--warn-min-workers", o.warn_min_workers, "WARNING level of --min-workers");
    count("--max-dead", o.max_dead, "Dead letters per queue above this");
    count("--warn-max-dead", o.warn_max_dead, "WARNING level of --max-dead");
    app.add_option("--worker", o.worker, "This worker (name or id) must be live and not in error")
        ->group(group);
    app.add_flag("--no-server-warnings", o.no_server_warnings,
                 "The server's configuration (eviction, persistence) does not make it WARNING")
        ->group(group)
        ->needs(check);
    auto* serve_option =
        app.add_option("--serve", o.serve,
                       "Serve /metrics (as --prometheus) and /livez over HTTP on ADDR "
                       "(PORT: 127.0.0.1) until SIGTERM");
    // A verdict is one line for a monitoring system: no other rendering goes with it.
    check->excludes(json)->excludes(prometheus)->excludes(app.get_option("--watch"));
    serve_option->excludes(json)->excludes(check)->excludes(app.get_option("--watch"));
    auto* job = app.add_subcommand("job", "Show jobs by id: state, attempts, result, last error");
    job->add_option("ID", o.job_ids, "Job ids, or - to read them from stdin")->required();
    job->add_flag("--json", o.job_json, "One JSON object per line");
    cli::add_common_options(app, common);
    cli::describe_tool(app, footer);
    cli::parse_command_line(app, argc, argv);
    auto config = cli::finish_options(app, common, "status");
    auto server = cli::resolve_server(common, config, "status");

    for (const auto& queue : o.queues)
        check_queue_name(queue);
    std::optional<std::chrono::milliseconds> watch_interval;
    if (app.get_option("--watch")->count() > 0) {
        watch_interval = std::chrono::seconds(2);
        // `--watch=VALUE` names an interval; `--watch VALUE` may be the first queue.
        bool attached = std::any_of(argv + 1, argv + argc, [](const char* arg) {
            return std::string_view(arg).starts_with("--watch=");
        });
        if (!o.watch.empty()) {
            if (auto parsed = parse_duration(o.watch))
                watch_interval = *parsed;
            else if (!attached && !queue_name_problem(o.watch))
                o.queues.insert(o.queues.begin(), o.watch);  // --watch QUEUE
            else
                throw UsageError(fmt::format("--watch: invalid interval '{}'", printable(o.watch)));
        }
        if (*watch_interval < std::chrono::milliseconds(100))
            throw UsageError("--watch: the interval must be at least 100ms");
    }
    Thresholds thresholds;
    thresholds.max_depth = o.max_depth;
    thresholds.warn_max_depth = o.warn_max_depth;
    thresholds.min_workers = o.min_workers;
    thresholds.warn_min_workers = o.warn_min_workers;
    thresholds.max_dead = o.max_dead;
    thresholds.warn_max_dead = o.warn_max_dead;
    // A duration limit of 0 is no limit (CONTRACT.md section 2), as for --timeout 0.
    auto age_limit = [](const std::string& text, const char* flag) -> std::optional<queue::Millis> {
        if (text.empty()) return std::nullopt;
        auto limit = parse_duration_or_throw(text, flag);
        if (limit.count() == 0) return std::nullopt;
        return limit;
    };
    thresholds.max_age = age_limit(o.max_age, "--max-age");
    thresholds.warn_max_age = age_limit(o.warn_max_age, "--warn-max-age");
    if (!o.worker.empty()) {
        if (auto problem = job_id_problem(o.worker))
            throw UsageError(fmt::format("--worker: '{}' cannot be a worker's name or id: {}",
                                         printable(o.worker), *problem));
    }
    thresholds.worker = o.worker;
    thresholds.server_warnings =
        o.no_server_warnings ? ServerWarnings::ignore : ServerWarnings::warn;
    std::optional<http::ListenAddress> serve_address;
    if (serve_option->count() > 0) serve_address = http::parse_listen_address(o.serve, "--serve");
    if (serve_address && job->parsed())
        throw UsageError("--serve serves the queues' metrics: it does not go with `job`");

    if (serve_address) return serve(server, o.queues, *serve_address);
    auto connection = cli::connect(server);
    if (job->parsed()) {
        // --json before `job` means the same as after it.
        auto unknown = show_jobs(connection, server.namespace_name, cli::ids_or_stdin(o.job_ids),
                                 o.job_json || o.json);
        return unknown > 0 ? 1 : 0;
    }
    if (o.check) {
        auto snapshot = take_snapshot(connection, server, o.queues);
        // --no-server-warnings: the user knows; stderr stays quiet about it too.
        if (!o.no_server_warnings) warn_about_server(snapshot);
        auto verdict = status::check(snapshot, thresholds, o.queues);
        cli::write_stdout(verdict.line + "\n");
        return verdict.code;
    }
    if (watch_interval) return watch(connection, server, o, *watch_interval);
    auto snapshot = take_snapshot(connection, server, o.queues);
    warn_about_server(snapshot);
    cli::write_stdout(o.json         ? render_json(snapshot)
                      : o.prometheus ? render_prometheus(snapshot)
                                     : render_human(snapshot));
    // Everything readable was shown; the damage is named on stderr and in the exit status.
    for (const auto& q : snapshot.queues)
        if (!q.damage.empty())
            log::error(fmt::format("queue {} is damaged: {} (README, \"Damaged data\")", q.name,
                                   printable(q.damage, 300)));
    if (!snapshot.registry_damage.empty())
        log::error(fmt::format("the workers' registry is damaged: {} (README, \"Damaged data\")",
                               printable(snapshot.registry_damage, 300)));
    return snapshot.damaged() ? 1 : 0;
}

// --check speaks the monitoring plugins' language even when it fails: a usage error or an
// unreachable server is UNKNOWN (3), with the reason on stdout.
int check_main(int argc, char** argv) {
    try {
        return status_main(argc, argv);
    } catch (const cli::HelpRequested&) {
        throw;
    } catch (const std::exception& error) {
        log::error(error.what());
        cli::write_stdout(fmt::format("WORKQ UNKNOWN: {}\n", error.what()));
        return 3;
    }
}

int entry(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--") == 0) break;
        if (std::strcmp(argv[i], "--check") == 0) return check_main(argc, argv);
    }
    return status_main(argc, argv);
}

}  // namespace
}  // namespace workq::status

int main(int argc, char** argv) {
    return workq::cli::run("workq-status", argc, argv, workq::status::entry);
}
