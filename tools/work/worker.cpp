#include "worker.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

#include "cli/server.hpp"
#include "queue/backoff.hpp"
#include "queue/registry.hpp"
#include "queue/scripts.hpp"
#include "redis/cluster.hpp"
#include "redis/embedded.hpp"
#include "redis/server_info.hpp"
#include "redis/url.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/faults.hpp"
#include "util/hardening.hpp"
#include "util/ids.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/time.hpp"

extern char** environ;

namespace workq::work {
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// How long an idle worker blocks on the server before looking again (and the ceiling on its
// idle command rate: about one BLPOP and one claim per this interval).
constexpr Millis idle_block{5000};
constexpr Millis reaper_interval{4000};  // lapsed leases come back within lease + 5 s
// Jobs taken back per reap call: bounds how long one call holds the server. A pass calls again
// at once while more remain, so that a thousand lapsed leases still come back in one pass.
constexpr std::size_t reap_limit = 200;
// After a handler could not be started for want of descriptors or processes: how long the
// worker claims nothing before trying again.
constexpr Millis shortage_pause{1000};
// --burst: how often a queue whose concurrency limit holds it back is looked at again (a burst
// does not wait on wake-ups).
constexpr Millis burst_concurrency_look{1000};
constexpr Millis reconnect_first{100};
constexpr Millis reconnect_cap{5000};
constexpr Millis blocking_retry{1000};    // after the waiting (BLPOP) connection failed to open
constexpr Millis settle_allowance{5000};  // after the shutdown budget, time left to report
constexpr Millis hook_timeout{60000};
constexpr Millis renew_at_most_every{2000};
// Redis refuses an argument longer than its proto-max-bulk-len, and a command longer than its
// client-query-buffer-limit, by closing the connection, often while the command is still being
// written: a settle carrying such a result would be sent again at every reconnect, forever.
// The worker cuts a result to the server's proto-max-bulk-len when it can read it (CONFIG GET;
// Redis's default of 512 MiB when it cannot), and a success report the connection died under
// settle_losses_before_cut times is sent again with its results cut to what any Redis takes:
// neither setting can be lower than 1 MiB. Cut results are recorded as `truncated`, as
// --max-result does.
constexpr std::size_t smallest_request_limit = std::size_t(1) << 20;
constexpr std::size_t request_room = 64 << 10;  // the command's other bytes, RESP framing
constexpr int settle_losses_before_cut = 3;
constexpr Millis unregister_timeout{2000};
// The breaker's cooldown doubles on each trip before a success, up to this (or the configured
// cooldown, when that is longer).
constexpr Millis max_failure_cooldown{600'000};

// Bytes of the longest single argument exec accepts, plus one: Linux's MAX_ARG_STRLEN (32
// pages) counts the terminating NUL.
std::size_t max_argument_bytes() {
    static const std::size_t bytes = 32 * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return bytes;
}

// The signals the loop acts on (as events, through asio's self-pipe). SIGUSR1 and SIGUSR2 are
// caught too: their default disposition kills the worker without a drain.
constexpr int watched_signals[] = {SIGTERM, SIGINT,  SIGHUP,  SIGTSTP,
                                   SIGCONT, SIGCHLD, SIGUSR1, SIGUSR2};

std::string hostname() {
    char buffer[256] = {};
    if (::gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
    return buffer;
}

double unit_random() {
    static std::mt19937_64 engine{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

Millis jittered(Millis base) {
    return Millis(
        static_cast<long long>(static_cast<double>(base.count()) * (0.75 + 0.5 * unit_random())));
}

bool hidden_from_handlers(std::string_view entry) {
    for (std::string_view name :
         {"WORKQ_REDIS_PASSWORD=", "WORKQ_SENTINEL_PASSWORD=", "WORKQ_REDIS_URL=", "WORKQ_JOB_ID=",
          "WORKQ_QUEUE=", "WORKQ_ATTEMPT=", "WORKQ_MAX_ATTEMPTS=", "WORKQ_WORKER_ID=",
          "WORKQ_STATE_DIR="})
        if (entry.starts_with(name)) return true;
    // REDIS_URL may name a handler's own server, so it stays, unless it holds a password.
    constexpr std::string_view redis_url = "REDIS_URL=";
    return entry.starts_with(redis_url) && redis::url_has_password(entry.substr(redis_url.size()));
}

}  // namespace

std::string_view to_string(State state) {
    switch (state) {
        case State::initializing:
            return "initializing";
        case State::starting:
            return "starting";
        case State::running:
            return "running";
        case State::paused:
            return "paused";
        case State::draining:
            return "draining";
        case State::stopped:
            return "stopped";
        case State::error:
            return "error";
    }
    return "?";
}

Worker::Worker(int argc, char** argv, Settings settings)
    : argc_(argc),
      argv_(argv),
      settings_(std::move(settings)),
      worker_id_(random_token(12)),
      host_(hostname()),
      namespace_keys_("workq"),
      signals_(io_),
      heartbeat_timer_(io_),
      reaper_timer_(io_),
      renew_timer_(io_),
      health_timer_(io_),
      runtime_timer_(io_),
      shutdown_timer_(io_),
      hard_stop_timer_(io_),
      reconnect_timer_(io_),
      retry_timer_(io_),
      summary_timer_(io_),
      shortage_timer_(io_),
      breaker_timer_(io_),
      hold_timer_(io_),
      service_(io_) {}

std::string Worker::worker_label() const {
    return settings_.name.empty() ? worker_id_ : settings_.name;
}

void Worker::set_state(State state, std::string_view why) {
    if (state == state_) return;
    auto from = state_;
    state_ = state;
    // Why the worker ends (the first reason to drain; an error overrides it), for the registry.
    if (!why.empty() &&
        (state == State::error || (state == State::draining && stop_reason_.empty())))
        stop_reason_ = std::string(why);
    if (why.empty())
        log::info(fmt::format("state {} -> {}", to_string(from), to_string(state)),
                  {{"worker", worker_label()}});
    else
        log::info(fmt::format("state {} -> {}: {}", to_string(from), to_string(state), why),
                  {{"worker", worker_label()}});
    if (started_running_ && state != State::stopped) heartbeat();
    service_.state_changed(to_string(state), why);
}

std::string Worker::pause_reason() const {
    if (paused_by_signal_) return "SIGTSTP: claiming nothing until SIGCONT";
    if (paused_by_breaker_) return breaker_reason_;
    if (paused_by_health_) return "health check failing: claiming nothing until it passes";
    return {};
}

void Worker::refresh_pause_state() {
    if (state_ != State::running && state_ != State::paused) return;
    auto reason = pause_reason();
    auto before = std::exchange(pause_reason_, reason);
    if (!reason.empty() && state_ == State::running) {
        set_state(State::paused, reason);
    } else if (!reason.empty() && reason != before) {
        // Paused already, for another reason now: say so, and show it in the registry.
        log::info(fmt::format("still paused: {}", reason), {{"worker", worker_label()}});
        heartbeat();
        service_.state_changed(to_string(state_), reason);
    } else if (reason.empty() && state_ == State::paused) {
        set_state(State::running);
        maybe_claim();
    }
}

int Worker::run() {
    log::info("state initializing", {{"worker", worker_label()}});
    for (const auto& warning : settings_warnings(settings_))
        log::warn(warning, {{"worker", worker_label()}});
    // A typo in COMMAND must never dead-letter a queue: refuse to start instead.
    std::string problem;
    auto executable = find_executable(settings_.command.front(), problem);
    if (!executable)
        throw FatalError(fmt::format("cannot execute COMMAND '{}': {}",
                                     printable(settings_.command.front()), problem));
    executable_ = *executable;
    // Every slot's pipes must fit: say so now, not with "cannot create a pipe" mid-run.
    check_descriptor_budget(settings_.concurrency);

    server_ = cli::resolve_server(settings_.common, settings_.config, "work");
    namespace_keys_ = queue::NamespaceKeys(server_.namespace_name);
    for (const auto& queue : settings_.queues)
        queue_keys_.emplace_back(server_.namespace_name, queue);
    successes_.resize(queue_keys_.size());
    rate_held_until_.resize(queue_keys_.size());
    hold_logged_.resize(queue_keys_.size());
    firer_.emplace(
        io_, namespace_keys_, queue_keys_, worker_id_, [this] { return commands_; },
        [this] { return worker_label(); });
    {
        // Reachable at start, or exit 3; this also starts the embedded server when it is the one.
        auto connection = cli::connect(server_);
        if (connection.is_cluster()) refuse_cross_slot_queues();
        for (const auto& warning : redis::server_warnings(connection))
            log::warn(warning);
    }
    metrics_ = WorkerMetrics(settings_.queues);
    started_at_ms_ =
        std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    if (settings_.http) serve_http();

    for (char** entry = environ; entry && *entry; ++entry)
        if (!hidden_from_handlers(*entry)) base_env_.emplace_back(*entry);
    state_base_ = redis::embedded_state_dir() / "workers" / worker_label();
    slots_.resize(static_cast<std::size_t>(settings_.concurrency));
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        slots_[i].index = i;
        // Handlers are promised a directory of their own (WORKQ_STATE_DIR): without one every
        // job would fail, so it is a reason not to start at all.
        if (auto error = make_slot_state_dir(i))
            throw FatalError(
                fmt::format("cannot create the handlers' state directory {}: {} (it is under "
                            "$XDG_STATE_HOME, else ~/.local/state)",
                            printable(slot_state_dir(i).string(), 200), error.message()));
    }

    // Only now that the embedded server runs (its double fork must not make it our orphan):
    // a handler's descendant that leaves its process group (timeout, setsid) and is orphaned
    // comes to the worker, which kills it (kill_inherited), instead of going to init.
    if (!become_subreaper())
        log::warn(fmt::format("cannot become a subreaper ({}): a handler's child that leaves its "
                              "process group may outlive its job",
                              std::strerror(errno)),
                  {{"worker", worker_label()}});
    std::string no_cgroup;
    cgroup_ = HandlerCgroup::create("workq-" + worker_id_, no_cgroup);
    if (cgroup_)
        log::info("handlers run in the cgroup " + cgroup_->dir(), {{"worker", worker_label()}});
    else
        log::debug("no cgroup for the handlers: " + no_cgroup +
                       "; process groups, the subreaper and the guard stand in",
                   {{"worker", worker_label()}});
    guard_scope_.marker = "WORKQ_WORKER_ID=" + worker_id_;
    if (cgroup_) guard_scope_.cgroup_dir = cgroup_->dir();
    guard_.emplace(GroupGuard::start(guard_scope_));
    // A signal mask is inherited: a worker started with SIGTERM blocked would never drain.
    // Unblock what the loop acts on (handlers get an empty mask anyway, see spawn()).
    sigset_t watched;
    sigemptyset(&watched);
    for (int signal_number : watched_signals)
        sigaddset(&watched, signal_number);
    ::sigprocmask(SIG_UNBLOCK, &watched, nullptr);
    watch_signals();
    connect_commands();
    io_.run();

    guard_->stop();
    if (startup_failure_) throw RedisError(*startup_failure_);
    log_summary(true);
    if (state_ != State::error && settings_.name.empty()) {
        std::error_code ignored;
        fs::remove_all(state_base_, ignored);
    }
    return exit_code_;
}

// --- connection ----------------------------------------------------------------------------------

void Worker::refuse_cross_slot_queues() const {
    // On a cluster each queue's keys live on the master of its own slot, and both the claim
    // over several queues (one script) and the wait on their wake-up lists (one BLPOP) need
    // them on one node. Until the claim goes per queue (issue 16), say so before anything is
    // claimed: a CROSSSLOT at the first claim would leave a worker that never works.
    if (queue_keys_.size() < 2) return;
    auto slot = redis::key_slot(queue_keys_.front().meta());
    for (const auto& keys : queue_keys_)
        if (redis::key_slot(keys.meta()) != slot)
            throw UsageError(fmt::format(
                "serving several queues on a cluster needs their keys on one node, and '{}' and "
                "'{}' hash to different slots: run one workq-work per queue (a worker serving "
                "several queues claims them in one call, which a cluster cannot route)",
                settings_.queues.front(), keys.queue()));
}

void Worker::connect_commands() {
    commands_ = redis::AsyncConnection::open(
        io_, server_.endpoint, std::chrono::seconds(5),
        [this](std::optional<std::string> error) {
            if (!error) {
                on_commands_ready();
                return;
            }
            // Through Sentinel a failover may begin between the check at start and this
            // connection: ask again, as after any loss.
            if (!started_running_ && state_ == State::initializing && !server_.endpoint.sentinel) {
                startup_failure_ = "cannot connect to " + *error;
                io_.stop();
                return;
            }
            on_commands_lost(*error);
        },
        [this](const std::string& reason) { on_commands_lost(reason); });
}

void Worker::on_commands_ready() {
    // Over TLS the log says what was verified, once per connection: what an operator checks
    // first when a managed service rotates its certificate.
    auto transport = commands_->transport_security();
    bool tls = transport.starts_with("TLS");
    if (reconnect_attempt_ > 0)
        log::info(tls ? "reconnected to Redis over " + transport : "reconnected to Redis",
                  {{"worker", worker_label()}});
    else if (tls)
        log::info("connected to Redis over " + transport, {{"worker", worker_label()}});
    reconnect_attempt_ = 0;
    // Every script is loaded before anything runs one. An EVALSHA the server does not know goes
    // again as EVAL behind the commands pipelined after it: a claim could then overtake the
    // settle sent before it, take the same job again (its lease had lapsed) and have the
    // settle refused as a lost lease.
    for (const auto& script : queue::embedded_scripts())
        commands_->command({"SCRIPT", "LOAD", std::string(script.text)}, [](auto) {});
    // The longest argument this server takes. CONFIG is refused to a least-privilege user:
    // then the limit stays as it was (Redis's default at first), silently.
    commands_->command({"CONFIG", "GET", "proto-max-bulk-len"}, [this](auto reply) {
        if (!reply || !reply->is_array() || reply->elements.size() != 2) return;
        try {
            auto limit = std::stoull(reply->elements[1].as_string());
            if (limit >= smallest_request_limit) bulk_limit_ = limit;
        } catch (const std::exception&) {
        }
    });
    if (state_ == State::initializing) {
        heartbeat();
        set_state(State::starting);
        if (settings_.on_start.empty()) {
            start_running();
            return;
        }
        run_hook(settings_.on_start, "on-start", hook_timeout,
                 [this](bool ok, const HandlerOutcome& outcome) {
                     // A stop signal during the hook began the drain already (and maybe the
                     // --on-stop hook): going to running now would claim jobs while exiting.
                     if (state_ != State::starting) return;
                     if (ok) {
                         start_running();
                         return;
                     }
                     exit_code_ = 4;
                     on_start_failed_ = true;
                     set_state(State::error, fmt::format("--on-start failed ({}); claiming nothing",
                                                         outcome.describe()));
                     finish();
                 });
        return;
    }
    flush_outbox();
    heartbeat();
    if (state_ == State::running || state_ == State::paused) firer_->start();
    maybe_claim();
}

void Worker::on_commands_lost(const std::string& reason) {
    claim_in_flight_ = false;
    firer_->on_connection_lost();
    if (blocking_) blocking_->close();
    blpop_in_flight_ = false;
    auto delay =
        std::min(reconnect_cap, Millis(reconnect_first.count() << std::min(reconnect_attempt_, 6)));
    delay = jittered(delay);
    ++reconnect_attempt_;
    log::warn(
        fmt::format(
            "lost connection to Redis ({}); handlers keep running; reconnecting in {} (attempt {})",
            reason, format_duration(delay), reconnect_attempt_),
        {{"worker", worker_label()}});
    reconnect_timer_.expires_after(delay);
    reconnect_timer_.async_wait([this](auto error) {
        if (!error && state_ != State::stopped) connect_commands();
    });
}

// --- lifecycle -----------------------------------------------------------------------------------

void Worker::start_running() {
    if (!settings_.health_cmd.empty() && !first_health_check_done_) {
        // The first health check runs before the first claim: a worker whose check fails from
        // the start claims nothing.
        run_hook(settings_.health_cmd, "health", std::min(settings_.health_interval, hook_timeout),
                 [this](bool ok, const HandlerOutcome& outcome) {
                     if (state_ != State::starting) return;  // a stop signal came meanwhile
                     first_health_check_done_ = true;
                     if (note_health(ok, outcome)) start_running();
                 });
        return;
    }
    started_running_ = true;
    if (settings_.persistent)
        for (std::size_t i = 0; i < static_cast<std::size_t>(settings_.concurrency); ++i)
            start_persistent(slots_[i]);
    set_state(State::running);
    if (paused_by_signal_ || paused_by_health_) refresh_pause_state();
    schedule_heartbeat(queue::heartbeat_interval);
    schedule_summary();
    schedule_reaper();
    firer_->start();
    schedule_renewal();
    if (!settings_.health_cmd.empty()) schedule_health_check(settings_.health_interval);
    if (settings_.max_runtime.count() > 0) {
        runtime_timer_.expires_after(settings_.max_runtime);
        runtime_timer_.async_wait([this](auto error) {
            if (!error) begin_drain("--max-runtime reached");
        });
    }
    // Jobs whose lease lapsed while no worker ran come back first: a --burst (or a worker that
    // stops after --max-jobs or --max-runtime) would otherwise end before the reaper's first
    // pass, and a job held by a killed worker would stay `running` for as long as only such
    // workers run.
    reap_all([this](long long) {
        first_reap_done_ = true;
        maybe_claim();
    });
}

void Worker::begin_drain(std::string_view why, bool urgent) {
    if (state_ == State::stopped || finishing_) return;
    if (state_ == State::draining) {
        if (!urgent) return;
        log::info("second stop signal: stopping handlers now", {{"worker", worker_label()}});
        for (auto& slot : slots_)
            if (slot.job) stop_slot(slot, StopReason::shutdown);
        return;
    }
    if (state_ != State::error) set_state(State::draining, why);
    if (blocking_) blocking_->close();
    blpop_in_flight_ = false;
    health_timer_.cancel();
    breaker_timer_.cancel();
    runtime_timer_.cancel();
    retry_timer_.cancel();
    hold_timer_.cancel();
    // The whole budget includes the kill grace: SIGTERM at budget - grace, SIGKILL at budget.
    auto term_at = settings_.shutdown_timeout > settings_.kill_grace
                       ? settings_.shutdown_timeout - settings_.kill_grace
                       : Millis(0);
    shutdown_timer_.expires_after(term_at);
    shutdown_timer_.async_wait([this](auto error) {
        if (error) return;
        for (auto& slot : slots_)
            if (slot.job) {
                log::warn("shutdown timeout: stopping the handler; the job is released",
                          {{"job", slot.job->claimed.id}});
                stop_slot(slot, StopReason::shutdown);
            }
    });
    hard_stop_timer_.expires_after(settings_.shutdown_timeout + settle_allowance);
    hard_stop_timer_.async_wait([this](auto error) {
        if (error) return;
        log::error(
            "could not report every outcome in time (is Redis reachable?); exiting: leases will "
            "lapse and the "
            "jobs run again",
            {{"worker", worker_label()}});
        for (auto& slot : slots_) {
            if (slot.run) slot.run->kill_now();
            if (slot.persistent) slot.persistent->stop_job(StopReason::shutdown);
        }
        outbox_.clear();
        successes_.assign(successes_.size(), {});
        settles_in_flight_ = 0;
        finish();
    });
    if (urgent) begin_drain(why, true);
    check_drained();
}

void Worker::check_drained() {
    if (finishing_ || (state_ != State::draining && state_ != State::error)) return;
    if (busy_slots() > 0 || settles_pending()) return;
    // Persistent handlers get EOF on stdin and a kill grace to exit on their own.
    std::size_t alive = 0;
    for (auto& slot : slots_)
        if (slot.persistent && slot.persistent->pid() > 0) {
            ++alive;
            if (!slot.persistent_stopping) {
                slot.persistent_stopping = true;
                slot.persistent->shutdown([this] { check_drained(); });
            }
        }
    if (alive > 0) return;
    finish();
}

void Worker::finish() {
    if (finishing_) return;
    finishing_ = true;
    if (settings_.burst && jobs_dead_ > 0 && exit_code_ == 0) exit_code_ = 1;
    shutdown_timer_.cancel();
    heartbeat_timer_.cancel();
    reaper_timer_.cancel();
    // Before the last heartbeat, on the same connection: its reply ends the process.
    firer_->stop();
    renew_timer_.cancel();
    health_timer_.cancel();
    breaker_timer_.cancel();
    runtime_timer_.cancel();
    retry_timer_.cancel();
    hold_timer_.cancel();
    summary_timer_.cancel();
    auto unregister_and_stop = [this] {
        if (state_ != State::error) set_state(State::stopped);
        hard_stop_timer_.expires_after(unregister_timeout);
        hard_stop_timer_.async_wait([this](auto error) {
            if (!error) io_.stop();
        });
        if (commands_ && commands_->ready())
            heartbeat(true, [this] { io_.stop(); });
        else
            io_.stop();
    };
    // --on-stop runs on every exit but one: an --on-start that failed (what it would undo
    // never happened). An error (COMMAND gone, a fatal error) is when it matters most.
    if (settings_.on_stop.empty() || on_start_failed_) {
        unregister_and_stop();
        return;
    }
    run_hook(settings_.on_stop, "on-stop", hook_timeout,
             [unregister_and_stop](bool, const HandlerOutcome&) { unregister_and_stop(); });
}

void Worker::fatal(std::string_view message) {
    log::error(message, {{"worker", worker_label()}});
    exit_code_ = 4;
    bool was_draining = state_ == State::draining;
    set_state(State::error, message);
    if (!was_draining) begin_drain(message);
    check_drained();
}

// --- signals and children ------------------------------------------------------------------------

void Worker::watch_signals() {
    ::signal(SIGPIPE, SIG_IGN);  // a handler that closes its stdin early must not kill us
    for (int signal_number : watched_signals)
        signals_.add(signal_number);
    signals_.async_wait([this](auto error, int signal_number) {
        if (error) return;
        on_signal(signal_number);
        watch_signals();
    });
}

void Worker::on_signal(int signal_number) {
    switch (signal_number) {
        case SIGCHLD:
            reap_children();
            break;
        case SIGTERM:
        case SIGINT: {
            bool second = state_ == State::draining;
            log::info(fmt::format("{}: {}", signal_number == SIGTERM ? "SIGTERM" : "SIGINT",
                                  second ? "skipping the wait" : "draining"),
                      {{"worker", worker_label()}});
            if (state_ == State::initializing || state_ == State::starting) {
                if (!started_running_ && !commands_->ready()) {
                    io_.stop();
                    return;
                }
            }
            begin_drain(signal_number == SIGTERM ? "SIGTERM" : "SIGINT", second);
            break;
        }
        case SIGHUP:
            reload_settings("SIGHUP");
            break;
        case SIGUSR1:
            // As some of the systems we replace do: a reload (a supervisor may only send USR1).
            reload_settings("SIGUSR1");
            break;
        case SIGUSR2:
            log::warn("SIGUSR2: means nothing to workq-work; ignored (SIGHUP or SIGUSR1 reloads)",
                      {{"worker", worker_label()}});
            break;
        case SIGTSTP:
            paused_by_signal_ = true;
            refresh_pause_state();
            break;
        case SIGCONT:
            if (paused_by_signal_) {
                paused_by_signal_ = false;
                refresh_pause_state();
            }
            break;
        default:
            break;
    }
}

void Worker::reap_children() {
    for (;;) {
        siginfo_t info{};
        if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
        pid_t pid = info.si_pid;
        auto found = children_.find(pid);
        if (found != children_.end()) {
            // The leader is a zombie until reaped, so its group id cannot be reused yet: kill
            // whatever it left behind in its group, tell the guard, then reap.
            ::kill(-pid, SIGKILL);
            guard_->forget(pid);
        }
        int status = 0;
        if (::waitpid(pid, &status, 0) < 0) break;
        if (guard_ && pid == guard_->pid()) {
            log::error("the process guard died; starting a new one", {{"worker", worker_label()}});
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

void Worker::kill_inherited() {
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
        {{"worker", worker_label()}});
}

void Worker::reload_settings(std::string_view signal_name) {
    try {
        auto fresh = parse_settings(argc_, argv_);
        check_descriptor_budget(fresh.concurrency);  // refused: the old settings stay
        if (fresh.queues != settings_.queues || fresh.command != settings_.command)
            log::warn(fmt::format("{}: queues and COMMAND never change while running; keeping them",
                                  signal_name),
                      {{"worker", worker_label()}});
        auto before = reloadable_values(settings_);
        settings_.concurrency = fresh.concurrency;
        settings_.timeout = fresh.timeout;
        settings_.kill_grace = fresh.kill_grace;
        settings_.lease = fresh.lease;
        settings_.backoff = fresh.backoff;
        settings_.permanent_exit_codes = fresh.permanent_exit_codes;
        settings_.shutdown_timeout = fresh.shutdown_timeout;
        settings_.on_start = fresh.on_start;
        settings_.on_stop = fresh.on_stop;
        bool health_changed = fresh.health_cmd != settings_.health_cmd ||
                              fresh.health_interval != settings_.health_interval;
        settings_.health_cmd = fresh.health_cmd;
        settings_.health_interval = fresh.health_interval;
        settings_.max_result = fresh.max_result;
        settings_.result_ttl = fresh.result_ttl;
        // A new cooldown applies from the next trip; the breaker turned off ends its pause.
        settings_.pause_after_failures = fresh.pause_after_failures;
        settings_.failure_cooldown = fresh.failure_cooldown;
        settings_.config = std::move(fresh.config);
        if (static_cast<std::size_t>(settings_.concurrency) > slots_.size()) {
            auto old_size = slots_.size();
            slots_.resize(static_cast<std::size_t>(settings_.concurrency));
            for (std::size_t i = old_size; i < slots_.size(); ++i)
                slots_[i].index = i;
        }
        // Say what changed, and what the file could not change: a setting the command line or
        // the environment gave stays as it is, which a reload that "changed nothing" hides.
        auto after = reloadable_values(settings_);
        std::string changes, pinned;
        for (std::size_t i = 0; i < after.size(); ++i) {
            const auto& [key, value] = after[i];
            if (before[i].second != value)
                changes += fmt::format("{}{} {} -> {}", changes.empty() ? "" : ", ", key,
                                       before[i].second, value);
            if (auto source = fresh.pinned.find(key); source != fresh.pinned.end())
                pinned += fmt::format("{}{} {} (by {})", pinned.empty() ? "" : ", ", key, value,
                                      source->second);
        }
        log::info(fmt::format("{}: reloaded the config: {}{}", signal_name,
                              changes.empty() ? "nothing changed" : changes,
                              pinned.empty() ? ""
                                             : "; kept, as the command line or environment "
                                               "sets them: " +
                                                   pinned),
                  {{"worker", worker_label()}});
        for (const auto& warning : settings_warnings(settings_))
            log::warn(warning, {{"worker", worker_label()}});
        if (health_changed && started_running_ && state_ != State::draining) {
            health_timer_.cancel();
            if (settings_.health_cmd.empty()) {
                paused_by_health_ = false;
                refresh_pause_state();
            } else {
                schedule_health_check(Millis(0));
            }
        }
        if (settings_.pause_after_failures <= 0 && paused_by_breaker_) {
            breaker_timer_.cancel();
            paused_by_breaker_ = false;
            failures_in_a_row_ = 0;
            log::info(fmt::format("{}: the breaker is off; its pause ends", signal_name),
                      {{"worker", worker_label()}});
            refresh_pause_state();
        }
        if (settings_.persistent && started_running_ && state_ != State::draining) {
            for (std::size_t k = 0; k < static_cast<std::size_t>(settings_.concurrency); ++k)
                start_persistent(slots_[k]);
            // Lowered: the slots past it take no new job; their handlers go now, or after the
            // job they run (on_persistent_done).
            for (auto& slot : slots_)
                retire_persistent(slot);
        }
        schedule_renewal();
        heartbeat();
        maybe_claim();
    } catch (const cli::HelpRequested&) {
    } catch (const std::exception& error) {
        log::error(fmt::format("{}: the config could not be loaded ({}); keeping the old settings",
                               signal_name, error.what()),
                   {{"worker", worker_label()}});
    }
}

// --- jobs ----------------------------------------------------------------------------------------

std::size_t Worker::free_slots() const {
    std::size_t free = 0;
    for (std::size_t i = 0;
         i < slots_.size() && i < static_cast<std::size_t>(settings_.concurrency); ++i)
        if (slot_ready(slots_[i])) ++free;
    return free;
}

std::size_t Worker::busy_slots() const {
    std::size_t busy = 0;
    for (const auto& slot : slots_)
        if (slot.job) ++busy;
    return busy;
}

void Worker::pause_claims_for_shortage() {
    if (short_of_resources_) return;
    short_of_resources_ = true;
    shortage_timer_.expires_after(shortage_pause);
    shortage_timer_.async_wait([this](auto error) {
        if (error) return;
        short_of_resources_ = false;
        maybe_claim();
    });
}

void Worker::maybe_claim() {
    if (state_ != State::running || claim_in_flight_ || short_of_resources_ || !first_reap_done_ ||
        !commands_ || !commands_->ready())
        return;
    std::size_t wanted = free_slots();
    if (settings_.max_jobs > 0) {
        auto left = settings_.max_jobs - jobs_started_;
        if (left <= 0) return;
        wanted = std::min<std::size_t>(wanted, static_cast<std::size_t>(left));
    }
    if (wanted == 0) return;
    claim_in_flight_ = true;
    last_claim_sent_ = std::chrono::steady_clock::now();
    auto token_base = fmt::format("{}.{}", worker_id_, ++claim_sequence_);
    auto call = queue::claim_call(queue_keys_, worker_id_, token_base, settings_.lease, wanted);
    commands_->script(
        *call.script, call.keys, call.args,
        [this, call, wanted](std::optional<redis::Reply> reply) {
            claim_in_flight_ = false;
            if (!reply) return;  // the connection failed: reconnecting claims again
            queue::ClaimResult result;
            try {
                queue::check_reply(call, *reply);
                result = queue::parse_claim(*reply);
            } catch (const queue::DataVersionError& error) {
                fatal(error.what());
                return;
            } catch (const std::exception& error) {
                log::error(fmt::format("claim failed: {}", error.what()),
                           {{"worker", worker_label()}});
                idle_wait(std::nullopt);
                return;
            }
            crash_point("after-claim");
            for (std::size_t q = 0; q < queue_keys_.size(); ++q) {
                std::optional<std::string> damage;
                for (const auto& found : result.damaged)
                    if (found.queue_index == q) damage = found.what;
                note_damage(q, damage);
            }
            firer_->on_claim_hint(result.next_tick);
            for (auto& claimed : result.jobs) {
                retries_.erase(claimed.id);  // its retry is here
                Job job;
                job.queue_index = claimed.queue_index;
                job.claimed = std::move(claimed);
                job.claimed_at = std::chrono::steady_clock::now();
                Slot* free_slot = nullptr;
                for (std::size_t i = 0;
                     i < slots_.size() && i < static_cast<std::size_t>(settings_.concurrency); ++i)
                    if (slot_ready(slots_[i])) {
                        free_slot = &slots_[i];
                        break;
                    }
                if (!free_slot || state_ != State::running) {
                    // Draining or paused since the claim went out: give it back, uncounted.
                    const auto& keys = queue_keys_[job.queue_index];
                    settle({queue::release_call(keys, job.claimed.id, job.claimed.token,
                                                settings_.result_ttl),
                            [](const redis::Reply&) {}});
                    continue;
                }
                start_job(*free_slot, std::move(job));
            }
            bool held = note_holds(result.holds);
            if (result.jobs.size() == wanted) {
                maybe_claim();
                return;
            }
            if (settings_.burst) {
                if (held) {
                    // Jobs wait but a limit holds them back: they are due, so the burst goes on.
                    // A rate hold's timer claims again; a concurrency hold looks every second.
                    if (!rate_hold_armed()) {
                        hold_timer_.expires_after(burst_concurrency_look);
                        hold_timer_.async_wait([this](auto error) {
                            if (!error) maybe_claim();
                        });
                    }
                    return;
                }
                if (busy_slots() == 0 && !settles_pending()) burst_idle();
                return;
            }
            idle_wait(result.next_due);
        });
}

void Worker::note_damage(std::size_t queue_index, std::optional<std::string> what) {
    auto known = damaged_queues_.find(queue_index);
    const auto& queue = settings_.queues[queue_index];
    if (!what) {
        if (known == damaged_queues_.end()) return;
        damaged_queues_.erase(known);
        log::info("the queue is no longer damaged; claiming from it again",
                  {{"worker", worker_label()}, {"queue", queue}});
        return;
    }
    if (known != damaged_queues_.end() && known->second == *what) return;
    damaged_queues_[queue_index] = *what;
    log::error(fmt::format("the queue is damaged: {}; claiming nothing from it until it is "
                           "repaired (README, \"Damaged data\"){}",
                           printable(*what, 300),
                           queue_keys_.size() > 1 ? "; the other queues are served as usual" : ""),
               {{"worker", worker_label()}, {"queue", queue}});
}

// Records which queues the claim's limits held back. A rate hold says when the next starts are
// possible: until then the worker does not wait on that queue's wake-ups (an enqueue there
// would only wake it to be held again), and a timer claims again at that time, at most
// idle_block later (so that a limit loosened meanwhile is seen). A concurrency hold has no
// time: the end of one of the queue's running jobs wakes waiters (complete, fail, release and
// reap push a wake-up), and the wait is an ordinary one.
bool Worker::note_holds(const std::vector<queue::Hold>& holds) {
    auto now = std::chrono::steady_clock::now();
    bool any = false;
    std::optional<std::chrono::steady_clock::time_point> first_end;
    for (std::size_t i = 0; i < rate_held_until_.size(); ++i) {
        auto hold = i < holds.size() ? holds[i] : queue::Hold{};
        rate_held_until_[i].reset();
        if (hold.kind == queue::HoldKind::none) continue;
        any = true;
        ++claims_held_back_;
        std::string why =
            hold.kind == queue::HoldKind::rate
                ? fmt::format("its rate limit; next start in {}", format_duration(hold.wait))
                : std::string("its concurrency limit; until one of its jobs ends");
        auto message = fmt::format("queue {} held back by {}", settings_.queues[i], why);
        if (!hold_logged_[i]) {
            hold_logged_[i] = true;
            log::info(message, {{"worker", worker_label()}});
        } else {
            log::debug(message, {{"worker", worker_label()}});
        }
        if (hold.kind == queue::HoldKind::rate) {
            auto end = now + std::min(hold.wait, idle_block);
            rate_held_until_[i] = end;
            if (!first_end || end < *first_end) first_end = end;
        }
    }
    if (first_end) {
        hold_timer_.expires_at(*first_end);
        hold_timer_.async_wait([this](auto error) {
            if (!error) maybe_claim();
        });
    } else {
        hold_timer_.cancel();
    }
    return any;
}

bool Worker::rate_hold_armed() const {
    auto now = std::chrono::steady_clock::now();
    return std::any_of(rate_held_until_.begin(), rate_held_until_.end(),
                       [&](const auto& until) { return until && *until > now; });
}

void Worker::burst_idle() {
    if (burst_reap_in_flight_) return;
    burst_reap_in_flight_ = true;
    reap_all([this](long long taken_back) {
        burst_reap_in_flight_ = false;
        if (state_ != State::running) return;
        if (taken_back > 0) {
            maybe_claim();
            return;
        }
        // Something started meanwhile: its end looks again.
        if (claim_in_flight_ || busy_slots() > 0 || settles_pending()) return;
        // A retry that was due when the last claim went out would have been claimed by it:
        // another worker ran it, a user cancelled it, or its queue is paused. Not ours to wait
        // for any more.
        std::erase_if(retries_,
                      [&](const auto& retry) { return retry.second <= last_claim_sent_; });
        if (retries_.empty()) {
            begin_drain("--burst: no job is due");
            return;
        }
        auto earliest = retries_.begin()->second;
        for (const auto& retry : retries_)
            earliest = std::min(earliest, retry.second);
        auto wait = std::chrono::duration_cast<Millis>(earliest - std::chrono::steady_clock::now());
        log::info(fmt::format("--burst: {} job(s) it ran wait for a retry; sleeping {} until the "
                              "first is due",
                              retries_.size(), format_duration(std::max(wait, Millis(0)))),
                  {{"worker", worker_label()}});
        retry_timer_.expires_at(earliest);
        retry_timer_.async_wait([this](auto error) {
            if (!error) maybe_claim();
        });
    });
}

void Worker::idle_wait(std::optional<Millis> next_due) {
    if (state_ != State::running || blpop_in_flight_ || settings_.burst || free_slots() == 0)
        return;
    if (!commands_ || !commands_->ready()) return;
    if (!blocking_ || blocking_->failed()) {
        blocking_ = redis::AsyncConnection::open(
            io_, server_.endpoint, std::chrono::seconds(5),
            [this, next_due](std::optional<std::string> error) {
                if (error) {
                    log::warn(fmt::format("cannot open the waiting connection: {}; trying again "
                                          "in {}",
                                          *error, format_duration(blocking_retry)),
                              {{"worker", worker_label()}});
                    // Nothing else would look again: without this the worker claims nothing
                    // more while its command connection stays up.
                    auto timer = std::make_shared<asio::steady_timer>(io_, blocking_retry);
                    timer->async_wait([this, timer](auto wait_error) {
                        if (!wait_error) maybe_claim();
                    });
                    return;
                }
                idle_wait(next_due);
            },
            [](const std::string&) {});
        return;
    }
    if (!blocking_->ready()) return;
    auto wait = idle_block;
    if (next_due) wait = std::max(Millis(10), std::min(wait, *next_due));
    std::vector<std::string> args{"BLPOP"};
    auto now = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < queue_keys_.size(); ++i)
        // A queue its rate limit holds back: hold_timer_ claims again when it allows.
        if (!rate_held_until_[i] || *rate_held_until_[i] <= now)
            args.push_back(queue_keys_[i].wake());
    if (args.size() == 1) return;  // every queue is held back by its rate: hold_timer_ looks
    args.push_back(fmt::format("{:.3f}", static_cast<double>(wait.count()) / 1000.0));
    blpop_in_flight_ = true;
    blocking_->command(
        std::move(args),
        [this](std::optional<redis::Reply> reply) {
            blpop_in_flight_ = false;
            if (reply && reply->is_error()) {
                // A wake key of another type (the claim replaces it, unless its queue is
                // damaged): never a loop of errors, and said once.
                if (reply->text != blpop_error_)
                    log::warn(
                        fmt::format("waiting for work failed: {}; claiming again every {}",
                                    printable(reply->text, 200), format_duration(blocking_retry)),
                        {{"worker", worker_label()}});
                blpop_error_ = reply->text;
                auto timer = std::make_shared<asio::steady_timer>(io_, blocking_retry);
                timer->async_wait([this, timer](auto wait_error) {
                    if (!wait_error) maybe_claim();
                });
                return;
            }
            if (reply) blpop_error_.clear();
            if (reply && reply->is_array() && (free_slots() == 0 || state_ != State::running)) {
                // Woken while every slot is busy, or while paused (SIGTSTP, a failing health
                // check): pass the wake-up on to another worker, or it waits a whole idle_block.
                auto key = reply->at(0).as_string();
                commands_->command({"RPUSH", key, "1"}, [](auto) {});
            }
            maybe_claim();
        },
        wait + Millis(5000));
}

std::vector<std::string> Worker::handler_env(const Job& job, std::size_t slot_index) const {
    auto env = base_env_;
    env.push_back("WORKQ_JOB_ID=" + job.claimed.id);
    env.push_back("WORKQ_QUEUE=" + settings_.queues[job.queue_index]);
    env.push_back(fmt::format("WORKQ_ATTEMPT={}", job.claimed.attempt));
    env.push_back(fmt::format("WORKQ_MAX_ATTEMPTS={}", job.claimed.max_attempts));
    env.push_back("WORKQ_WORKER_ID=" + worker_id_);
    env.push_back("WORKQ_STATE_DIR=" + slot_state_dir(slot_index).string());
    return env;
}

fs::path Worker::slot_state_dir(std::size_t slot_index) const {
    return state_base_ / fmt::format("slot-{}", slot_index + 1);
}

std::error_code Worker::make_slot_state_dir(std::size_t slot_index) const {
    // 0700 at every level: a handler's files are nobody else's to read. Levels of workq's own
    // that existed already (made by an older version, or by hand) are closed too.
    auto dir = slot_state_dir(slot_index);
    auto error = make_private_directories(dir);
    if (!error)
        for (const auto& level :
             {dir, state_base_, state_base_.parent_path(), state_base_.parent_path().parent_path()})
            ::chmod(level.c_str(), 0700);
    return error;
}

void Worker::fail_permanently(Job job, const std::string& error, const std::string& reason) {
    const auto& keys = queue_keys_[job.queue_index];
    settle({queue::fail_call(keys, job.claimed.id, job.claimed.token, error, reason, std::nullopt,
                             settings_.result_ttl),
            [this, id = job.claimed.id, queue_index = job.queue_index, error](const redis::Reply&) {
                ++jobs_dead_;
                metrics_.count(queue_index, Outcome::dead);
                log::error("job dead: " + error, {{"job", id}});
            }});
}

void Worker::start_job(Slot& slot, Job job) {
    if (slot.persistent) {
        ++jobs_started_;
        log::info(
            "job claimed",
            {{"worker", worker_label()},
             {"queue", settings_.queues[job.queue_index]},
             {"job", job.claimed.id},
             {"attempt", fmt::format("{}/{}", job.claimed.attempt, job.claimed.max_attempts)}});
        queue::HandlerRequest request{job.claimed.id, settings_.queues[job.queue_index],
                                      job.claimed.payload, job.claimed.attempt};
        auto timeout = job.claimed.timeout.value_or(settings_.timeout);
        slot.job = std::move(job);
        slot.persistent->run_job(request, timeout,
                                 [this, index = slot.index](PersistentOutcome outcome) {
                                     on_persistent_done(index, std::move(outcome));
                                 });
        return;
    }
    ++jobs_started_;
    const auto& queue = settings_.queues[job.queue_index];
    log::info("job claimed",
              {{"worker", worker_label()},
               {"queue", queue},
               {"job", job.claimed.id},
               {"attempt", fmt::format("{}/{}", job.claimed.attempt, job.claimed.max_attempts)}});
    // Made again if something removed it while the worker ran (made at start, or exit 4).
    make_slot_state_dir(slot.index);
    HandlerRun::Params params;
    params.executable = executable_;
    params.argv = settings_.command;
    params.env = handler_env(job, slot.index);
    params.payload_on_stdin = !settings_.payload_as_argument;
    params.timeout = job.claimed.timeout.value_or(settings_.timeout);
    params.kill_grace = settings_.kill_grace;
    params.max_result = settings_.max_result;
    params.tag = job.claimed.id;
    params.guard_fd = guard_->registration_fd();
    params.cgroup_fd = cgroup_ ? cgroup_->procs_fd() : -1;
    if (settings_.payload_as_argument) {
        // A payload no exec can pass as an argument, now or ever: a permanent failure of that
        // job, not of the worker (every worker taking it would stop, and the queue with them).
        std::string unpassable;
        if (job.claimed.payload.find('\0') != std::string::npos)
            unpassable = "the payload holds a NUL byte and cannot be passed as an argument (--arg)";
        else if (job.claimed.payload.size() >= max_argument_bytes())
            unpassable = fmt::format(
                "the payload of {} bytes is over the kernel's limit of {} bytes for one argument "
                "(--arg); pass it on stdin (without --arg)",
                job.claimed.payload.size(), max_argument_bytes() - 1);
        if (!unpassable.empty()) {
            ++jobs_finished_;
            fail_permanently(std::move(job), unpassable, "payload");
            asio::post(io_, [this] { maybe_claim(); });
            return;
        }
        params.argv.push_back(job.claimed.payload);
    } else {
        params.payload = job.claimed.payload;
    }
    slot.job = std::move(job);
    try {
        slot.run = HandlerRun::start(io_, std::move(params),
                                     [this, index = slot.index](HandlerOutcome outcome) {
                                         on_handler_done(index, std::move(outcome));
                                     });
        children_[slot.run->pid()] = [run = slot.run](int status) { run->on_exit(status); };
    } catch (const std::exception& error) {
        // No pipe or no process to be had (descriptors or processes run out): a shortage of
        // the moment, neither the job's fault nor a reason to stop. The job goes back
        // uncounted, and the worker claims nothing for a while rather than take it again at
        // once. If we die before the release lands, the lease lapses and the job comes back.
        const auto& held = *slot.job;
        log::warn(fmt::format("cannot start the handler: {}; job released (attempt not counted); "
                              "claiming again in {}",
                              error.what(), format_duration(shortage_pause)),
                  {{"worker", worker_label()}, {"job", held.claimed.id}});
        settle({queue::release_call(queue_keys_[held.queue_index], held.claimed.id,
                                    held.claimed.token, settings_.result_ttl),
                [](const redis::Reply&) {}});
        slot.job.reset();
        --jobs_started_;
        pause_claims_for_shortage();
    }
}

bool Worker::slot_ready(const Slot& slot) const {
    if (slot.job) return false;
    return !settings_.persistent || (slot.persistent && slot.persistent->ready());
}

void Worker::stop_slot(Slot& slot, StopReason reason) {
    if (slot.run)
        slot.run->stop(reason);
    else if (slot.persistent)
        slot.persistent->stop_job(reason);
}

void Worker::start_persistent(Slot& slot) {
    if (slot.persistent) return;
    PersistentHandler::Params params;
    params.executable = executable_;
    params.argv = settings_.command;
    params.env = base_env_;
    params.env.push_back("WORKQ_WORKER_ID=" + worker_id_);
    make_slot_state_dir(slot.index);
    params.env.push_back("WORKQ_STATE_DIR=" + slot_state_dir(slot.index).string());
    std::string queues;
    for (const auto& queue : settings_.queues)
        queues += (queues.empty() ? "" : ",") + queue;
    params.env.push_back("WORKQ_QUEUE=" + queues);
    params.kill_grace = settings_.kill_grace;
    params.max_reply = settings_.max_result;
    params.tag = fmt::format("slot-{}", slot.index + 1);
    params.guard_fd = guard_->registration_fd();
    params.cgroup_fd = cgroup_ ? cgroup_->procs_fd() : -1;
    params.recycle_jobs = settings_.recycle_jobs;
    params.recycle_errors = settings_.recycle_errors;
    params.recycle_age = settings_.recycle_age;
    auto index = slot.index;
    slot.persistent = PersistentHandler::start(
        io_, std::move(params),
        [this, index](pid_t pid) {
            children_[pid] = [this, index](int status) {
                if (auto handler = slots_[index].persistent) handler->on_exit(status);
            };
        },
        [this, index] {
            auto handler = slots_[index].persistent;
            if (handler && handler->exec_error() != 0) {
                fatal(fmt::format("cannot execute COMMAND '{}': {}",
                                  printable(settings_.command.front()),
                                  std::strerror(handler->exec_error())));
                return;
            }
            maybe_claim();
        });
}

void Worker::retire_persistent(Slot& slot) {
    if (!slot.persistent || slot.job || slot.persistent_stopping ||
        slot.index < static_cast<std::size_t>(settings_.concurrency) || state_ == State::draining ||
        state_ == State::error)
        return;
    log::info(fmt::format("concurrency lowered to {}: stopping the persistent handler of slot {}",
                          settings_.concurrency, slot.index + 1),
              {{"worker", worker_label()}, {"pid", std::to_string(slot.persistent->pid())}});
    slot.persistent_stopping = true;
    slot.persistent->shutdown([this, index = slot.index] {
        auto& retired = slots_[index];
        retired.persistent.reset();
        retired.persistent_stopping = false;
        if (state_ == State::draining || state_ == State::error) {
            check_drained();
            return;
        }
        // Raised again while this one was going: the slot gets a fresh handler.
        if (started_running_ && index < static_cast<std::size_t>(settings_.concurrency))
            start_persistent(retired);
    });
}

void Worker::on_persistent_done(std::size_t slot_index, PersistentOutcome outcome) {
    auto& slot = slots_[slot_index];
    if (!slot.job) return;
    Job job = std::move(*slot.job);
    slot.job.reset();
    retire_persistent(slot);
    RunResult result;
    result.duration = outcome.duration;
    result.describe = outcome.reason.empty() ? "ok" : outcome.reason;
    using Kind = PersistentOutcome::Kind;
    switch (outcome.kind) {
        case Kind::ok:
            result.kind = RunResult::Kind::succeeded;
            result.result = std::move(outcome.result);
            if (result.result.size() > settings_.max_result) {
                result.dropped = result.result.size() - settings_.max_result;
                result.result.resize(settings_.max_result);
            }
            break;
        case Kind::stopped:
            if (outcome.stopped == StopReason::shutdown) {
                result.kind = RunResult::Kind::released;
                break;
            }
            result.kind = RunResult::Kind::failed;
            result.cancelled = outcome.stopped == StopReason::cancelled;
            result.reason = outcome.reason;
            result.error = outcome.error;
            break;
        case Kind::exec_failed:
            result.kind = RunResult::Kind::exec_failed;
            result.exec_error = slot.persistent ? slot.persistent->exec_error() : ENOEXEC;
            break;
        default:  // error, crashed, bad reply, timeout: a failed attempt
            result.kind = RunResult::Kind::failed;
            result.permanent = outcome.kind == Kind::error && !outcome.retry;
            result.reason = outcome.reason;
            result.error = outcome.error;
            break;
    }
    report(std::move(job), std::move(result));
}

void Worker::on_handler_done(std::size_t slot_index, HandlerOutcome outcome) {
    auto& slot = slots_[slot_index];
    slot.run.reset();
    if (!slot.job) return;
    Job job = std::move(*slot.job);
    slot.job.reset();
    RunResult result;
    result.duration = outcome.duration;
    result.describe = outcome.describe();
    if (outcome.exec_error != 0) {
        result.kind = RunResult::Kind::exec_failed;
        result.exec_error = outcome.exec_error;
    } else if (outcome.stopped == StopReason::shutdown) {
        result.kind = RunResult::Kind::released;
    } else if (outcome.exited_zero()) {
        result.kind = RunResult::Kind::succeeded;
        result.result = std::move(outcome.result);
        result.dropped = outcome.result_dropped;
    } else {
        result.kind = RunResult::Kind::failed;
        result.cancelled = outcome.stopped == StopReason::cancelled;
        result.permanent = outcome.stopped == StopReason::none &&
                           settings_.permanent_exit_codes.contains(outcome.exit_code());
        result.reason = outcome.describe();
        result.error = outcome.error_tail;
    }
    report(std::move(job), std::move(result));
}

void Worker::report(Job job, RunResult run) {
    ++jobs_finished_;
    crash_point("before-settle");
    // Before the claim at the end: a worker that trips here claims nothing more. A job a user
    // cancelled, one whose lease was lost and one released say nothing about the handler.
    if (!job.lease_lost && !job.cancel_requested && !run.cancelled) {
        if (run.kind == RunResult::Kind::succeeded)
            note_run_for_breaker(false);
        else if (run.kind == RunResult::Kind::failed)
            note_run_for_breaker(true);
    }
    const auto& keys = queue_keys_[job.queue_index];
    const auto& id = job.claimed.id;
    auto duration = format_duration_short(run.duration);
    std::string queue = settings_.queues[job.queue_index];
    auto queue_index = job.queue_index;
    if (!job.lease_lost &&
        (run.kind == RunResult::Kind::succeeded || run.kind == RunResult::Kind::failed))
        metrics_.observe(queue_index, run.duration);

    if (run.kind == RunResult::Kind::exec_failed && run.exec_error == E2BIG &&
        settings_.payload_as_argument) {
        // The payload as an argument made the command line too long for exec: that job's fault.
        auto error = fmt::format(
            "the payload of {} bytes makes the command line too long for exec (--arg): {}; pass "
            "it on stdin (without --arg)",
            job.claimed.payload.size(), std::strerror(E2BIG));
        fail_permanently(std::move(job), error, "payload");
    } else if (run.kind == RunResult::Kind::exec_failed) {
        settle({queue::release_call(keys, id, job.claimed.token, settings_.result_ttl),
                [](const redis::Reply&) {}});
        fatal(fmt::format("cannot execute COMMAND '{}': {}; job {} released, attempt not counted",
                          printable(settings_.command.front()), std::strerror(run.exec_error), id));
    } else if (job.lease_lost) {
        metrics_.count(queue_index, Outcome::lost);
        log::warn(
            "lease lost: another worker holds the job or it was settled; its outcome is dropped",
            {{"worker", worker_label()}, {"queue", queue}, {"job", id}, {"outcome", run.describe}});
    } else if (run.kind == RunResult::Kind::released) {
        settle({queue::release_call(keys, id, job.claimed.token, settings_.result_ttl),
                [this, id, queue, queue_index](const redis::Reply& reply) {
                    if (queue::parse_settle(reply) != queue::Settle::done) return;
                    ++jobs_released_;
                    metrics_.count(queue_index, Outcome::released);
                    log::info("job released (attempt not counted)",
                              {{"worker", worker_label()}, {"queue", queue}, {"job", id}});
                }});
    } else if (run.kind == RunResult::Kind::succeeded) {
        if (run.result.size() > bulk_limit_ - request_room) {
            auto kept = bulk_limit_ - request_room;
            log::warn(fmt::format("result of {} bytes cut at {}: the server takes no longer "
                                  "argument (its proto-max-bulk-len)",
                                  run.result.size(), kept),
                      {{"worker", worker_label()}, {"queue", queue}, {"job", id}});
            run.dropped += run.result.size() - kept;
            run.result.resize(kept);
        } else if (run.dropped > 0)
            log::warn(fmt::format("result cut at {} bytes ({} more dropped; see --max-result)",
                                  run.result.size(), run.dropped),
                      {{"job", id}});
        successes_[job.queue_index].pending.push_back(
            {id, job.claimed.token, std::move(run.result), run.dropped,
             [this, id, queue, queue_index, duration,
              attempt = job.claimed.attempt](queue::Settle settled) {
                 if (settled == queue::Settle::refused) {
                     metrics_.count(queue_index, Outcome::lost);
                     log::warn(
                         "lease lost: the success was not recorded (another worker holds the job)",
                         {{"worker", worker_label()}, {"queue", queue}, {"job", id}});
                     return;
                 }
                 if (settled == queue::Settle::quarantined) {
                     log::error(
                         "the job's record is corrupt: dead-lettered with its result kept "
                         "(see workq-dlq show)",
                         {{"worker", worker_label()}, {"queue", queue}, {"job", id}});
                     return;
                 }
                 ++jobs_succeeded_;
                 metrics_.count(queue_index, Outcome::succeeded);
                 log::info("job succeeded", {{"worker", worker_label()},
                                             {"queue", queue},
                                             {"job", id},
                                             {"attempt", std::to_string(attempt)},
                                             {"duration", duration}});
             }});
        send_successes(job.queue_index);
    } else {
        bool cancelled = job.cancel_requested || run.cancelled;
        bool permanent = run.permanent;
        std::optional<Millis> delay;
        if (!permanent)
            delay = queue::retry_delay(settings_.backoff, job.claimed.attempt, unit_random());
        auto reason = cancelled ? std::string("cancelled") : run.reason;
        auto error_text = run.error.empty() ? reason : run.error;
        settle(
            {queue::fail_call(keys, id, job.claimed.token, error_text, reason, delay,
                              settings_.result_ttl),
             [this, id, queue, queue_index, reason, duration, delay, attempt = job.claimed.attempt,
              max = job.claimed.max_attempts](const redis::Reply& reply) {
                 auto result = queue::parse_fail(reply);
                 if (result.settle == queue::Settle::refused) {
                     metrics_.count(queue_index, Outcome::lost);
                     log::warn(
                         "lease lost: the failure was not recorded (another worker holds the job)",
                         {{"worker", worker_label()}, {"queue", queue}, {"job", id}});
                     return;
                 }
                 if (result.settle == queue::Settle::duplicate) return;
                 if (result.settle == queue::Settle::quarantined) {
                     log::error(
                         "the job's record is corrupt: dead-lettered with this attempt's "
                         "reason (see workq-dlq show)",
                         {{"worker", worker_label()},
                          {"queue", queue},
                          {"job", id},
                          {"reason", reason}});
                     return;
                 }
                 switch (result.state) {
                     case queue::JobState::scheduled:
                         log::warn("job failed; will retry",
                                   {{"worker", worker_label()},
                                    {"queue", queue},
                                    {"job", id},
                                    {"attempt", fmt::format("{}/{}", attempt, max)},
                                    {"reason", reason},
                                    {"duration", duration},
                                    {"retry_at", format_rfc3339(result.due_ms)}});
                         ++jobs_failed_;
                         metrics_.count(queue_index, Outcome::failed);
                         // A burst waits for it (CONTRACT.md section 4). The server's due time
                         // is now + delay by its clock, no later than this by ours.
                         if (settings_.burst && delay)
                             retries_[id] = std::chrono::steady_clock::now() + *delay;
                         break;
                     case queue::JobState::dead:
                         ++jobs_failed_;
                         ++jobs_dead_;
                         metrics_.count(queue_index, Outcome::dead);
                         log::error("job dead", {{"worker", worker_label()},
                                                 {"queue", queue},
                                                 {"job", id},
                                                 {"attempt", fmt::format("{}/{}", attempt, max)},
                                                 {"reason", reason},
                                                 {"duration", duration}});
                         break;
                     case queue::JobState::cancelled:
                         metrics_.count(queue_index, Outcome::cancelled);
                         log::info("job cancelled",
                                   {{"worker", worker_label()}, {"queue", queue}, {"job", id}});
                         break;
                     default:
                         break;
                 }
             }});
    }
    if (settings_.max_jobs > 0 && jobs_finished_ >= settings_.max_jobs)
        begin_drain("--max-jobs reached");
    maybe_claim();
    check_drained();
}

void Worker::settle(Outgoing outgoing) {
    if (!commands_ || !commands_->ready()) {
        outbox_.push_back(std::move(outgoing));
        return;
    }
    ++settles_in_flight_;
    // Shared, not copied: the call may hold a batch of results.
    auto sent = std::make_shared<Outgoing>(std::move(outgoing));
    commands_->script(*sent->call.script, sent->call.keys, sent->call.args,
                      [this, sent](std::optional<redis::Reply> reply) {
                          --settles_in_flight_;
                          if (!reply) {
                              // Lost on the way: send it again once reconnected. Settles are
                              // idempotent (a repeat by the same token changes nothing). One the
                              // server hangs up on again and again is refused for its size: not
                              // sent unchanged once more (see smallest_request_limit).
                              if (++sent->lost >= settle_losses_before_cut)
                                  cut_refused_settle(*sent, fmt::format("the connection died {} "
                                                                        "times while it was sent",
                                                                        sent->lost));
                              outbox_.push_front(std::move(*sent));
                              return;
                          }
                          // The server said why before hanging up (its "Protocol error: invalid
                          // bulk length"): the same, at once.
                          if (reply->is_error() && reply->text.starts_with("ERR Protocol error") &&
                              cut_refused_settle(
                                  *sent, "the server refused it: " + printable(reply->text, 120))) {
                              outbox_.push_front(std::move(*sent));
                              return;
                          }
                          try {
                              queue::check_reply(sent->call, *reply);
                              sent->on_reply(*reply);
                          } catch (const queue::DataVersionError& error) {
                              fatal(error.what());
                          } catch (const std::exception& error) {
                              log::error(
                                  fmt::format("reporting an outcome failed: {}", error.what()),
                                  {{"worker", worker_label()}});
                          }
                          if (sent->answered) sent->answered();
                          // A --burst ends only when no settle is in flight. A claim that found
                          // nothing may have come back before this settle (its first EVALSHA meets
                          // NOSCRIPT and goes again as EVAL): look once more, or the burst never
                          // ends.
                          if (settings_.burst && settles_in_flight_ == 0) maybe_claim();
                          check_drained();
                      });
}

bool Worker::cut_refused_settle(Outgoing& outgoing, std::string_view why) {
    if (!queue::cut_results(outgoing.call, smallest_request_limit - request_room)) return false;
    std::vector<std::string_view> ids;
    for (std::size_t i = 2; i < outgoing.call.args.size(); i += 4)
        ids.push_back(outgoing.call.args[i]);
    log::error(fmt::format("the report of the success of {}: {}; it is too long for the server "
                           "(proto-max-bulk-len, client-query-buffer-limit): sent again with the "
                           "results cut to {} bytes in all (recorded as truncated)",
                           fmt::join(ids, ", "), why, smallest_request_limit - request_room),
               {{"worker", worker_label()}});
    outgoing.lost = 0;
    return true;
}

void Worker::send_successes(std::size_t queue_index) {
    auto& batch = successes_[queue_index];
    if (batch.in_flight || batch.pending.empty()) return;
    // Bounded, so that one call never holds the server long: at most this many jobs, and no
    // more once their results add up to a megabyte.
    constexpr std::size_t most_jobs = 64;
    constexpr std::size_t most_result_bytes = 1 << 20;
    std::size_t count = 0, bytes = 0;
    while (count < batch.pending.size() && count < most_jobs && bytes < most_result_bytes)
        bytes += batch.pending[count++].result.size();
    auto sent = std::make_shared<std::vector<PendingSuccess>>(
        std::make_move_iterator(batch.pending.begin()),
        std::make_move_iterator(batch.pending.begin() + static_cast<std::ptrdiff_t>(count)));
    batch.pending.erase(batch.pending.begin(),
                        batch.pending.begin() + static_cast<std::ptrdiff_t>(count));
    std::vector<queue::Completion> jobs;
    jobs.reserve(count);
    for (const auto& success : *sent)
        jobs.push_back({success.id, success.token, success.result, success.dropped});
    auto call = queue::complete_call(queue_keys_[queue_index], jobs, settings_.result_ttl);
    for (auto& success : *sent)
        std::string().swap(success.result);  // the call holds a copy
    batch.in_flight = true;
    settle({std::move(call),
            [sent](const redis::Reply& reply) {
                auto verdicts = queue::parse_complete(reply);
                for (std::size_t i = 0; i < sent->size(); ++i)
                    (*sent)[i].settled(i < verdicts.size() ? verdicts[i] : queue::Settle::refused);
            },
            [this, queue_index] {
                successes_[queue_index].in_flight = false;
                send_successes(queue_index);
            }});
}

bool Worker::settles_pending() const {
    if (!outbox_.empty() || settles_in_flight_ > 0) return true;
    for (const auto& batch : successes_)
        if (!batch.pending.empty() || batch.in_flight) return true;
    return false;
}

void Worker::flush_outbox() {
    auto pending = std::move(outbox_);
    outbox_.clear();
    for (auto& outgoing : pending)
        settle(std::move(outgoing));
}

// --- periodic work -------------------------------------------------------------------------------

void Worker::heartbeat(bool exiting, std::function<void()> then) {
    if (!commands_ || !commands_->ready()) {
        if (then) then();
        return;
    }
    std::string queues;
    for (const auto& queue : settings_.queues)
        queues += (queues.empty() ? "" : ",") + queue;
    queue::Fields fields = {{"name", worker_label()},
                            {"host", host_},
                            {"pid", std::to_string(::getpid())},
                            {"state", std::string(to_string(state_))},
                            {"queues", queues},
                            {"concurrency", std::to_string(settings_.concurrency)},
                            {"busy", std::to_string(busy_slots())},
                            {"processed", std::to_string(jobs_finished_)},
                            {"failed", std::to_string(jobs_failed_)},
                            {"version", WORKQ_VERSION}};
    // Why it claims nothing while paused (the breaker, a failing health check, SIGTSTP); empty
    // otherwise, so that a resumed worker's hash holds no stale reason.
    if (!exiting) fields.emplace_back("reason", state_ == State::paused ? pause_reason_ : "");
    // The last word stays in the registry a while, with the reason: `workq-status` shows it,
    // and `--check --worker` says why the worker is gone instead of "not registered".
    auto call = exiting ? queue::exit_call(
                              namespace_keys_, worker_id_,
                              [&] {
                                  auto last = fields;
                                  last.emplace_back("reason", stop_reason_);
                                  return last;
                              }(),
                              state_ == State::error ? queue::keep_error : queue::keep_stopped)
                        : queue::heartbeat_call(namespace_keys_, worker_id_, fields);
    commands_->script(*call.script, call.keys, call.args,
                      [this, call, then = std::move(then)](std::optional<redis::Reply> reply) {
                          // A damaged registry leaves this worker unregistered, not stopped: said
                          // once.
                          std::string damage;
                          if (reply && reply->is_error()) {
                              try {
                                  queue::check_reply(call, *reply);
                              } catch (const std::exception& error) {
                                  damage = error.what();
                              }
                          }
                          if (reply && damage != registry_damage_) {
                              if (!damage.empty())
                                  log::error(fmt::format("cannot register the worker: {}", damage),
                                             {{"worker", worker_label()}});
                              else
                                  log::info("registered again", {{"worker", worker_label()}});
                              registry_damage_ = damage;
                          }
                          if (then) then();
                      });
}

void Worker::schedule_summary() {
    if (settings_.summary_interval.count() <= 0) return;
    summary_timer_.expires_after(settings_.summary_interval);
    summary_timer_.async_wait([this](auto error) {
        if (error) return;
        log_summary(false);
        schedule_summary();
    });
}

void Worker::log_summary(bool final) {
    auto ran = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started_at_);
    auto counts =
        fmt::format("processed {}, succeeded {}, failed {}, dead {}, released {}", jobs_finished_,
                    jobs_succeeded_, jobs_failed_, jobs_dead_, jobs_released_);
    if (final) {
        log::info(fmt::format("final summary: {} in {}; exit {}", counts,
                              format_duration_short(ran), exit_code_),
                  {{"worker", worker_label()}, {"state", std::string(to_string(state_))}});
        return;
    }
    auto recent = jobs_finished_ - finished_at_last_summary_;
    finished_at_last_summary_ = jobs_finished_;
    log::info(fmt::format("summary: {} ({} in the last {}); busy {}/{}; state {}", counts, recent,
                          format_duration(settings_.summary_interval), busy_slots(),
                          settings_.concurrency, to_string(state_)),
              {{"worker", worker_label()}});
}

void Worker::schedule_heartbeat(Millis after) {
    heartbeat_timer_.expires_after(after);
    heartbeat_timer_.async_wait([this](auto error) {
        if (error) return;
        heartbeat();
        kill_inherited();
        schedule_heartbeat(queue::heartbeat_interval);
    });
}

void Worker::schedule_reaper() {
    reaper_timer_.expires_after(jittered(reaper_interval));
    reaper_timer_.async_wait([this](auto error) {
        if (error) return;
        // The next pass is timed from the end of this one: passes never overlap.
        reap_all([this](long long taken_back) {
            log::debug(fmt::format("reaper pass: {} job(s) taken back", taken_back),
                       {{"worker", worker_label()}});
            // Schedules ride on the reaper's period: a busy worker fires and keeps its watch.
            if (state_ == State::running || state_ == State::paused) firer_->on_reaper_pass();
            if (!finishing_) schedule_reaper();
        });
    });
}

struct Worker::ReapPass {
    std::size_t queues_left = 0;
    long long taken_back = 0;
    std::function<void(long long)> then;
};

void Worker::reap_all(std::function<void(long long taken_back)> then) {
    if (!commands_ || !commands_->ready() || queue_keys_.empty()) {
        asio::post(io_, [then = std::move(then)] { then(0); });
        return;
    }
    auto pass = std::make_shared<ReapPass>();
    pass->queues_left = queue_keys_.size();
    pass->then = std::move(then);
    for (std::size_t q = 0; q < queue_keys_.size(); ++q)
        reap_queue(q, pass, 0);
}

void Worker::reap_queue(std::size_t queue_index, std::shared_ptr<ReapPass> pass, long long so_far) {
    auto queue_done = [this, queue_index, pass](long long total) {
        if (total > 0)
            log::warn(fmt::format("took back {} job(s) whose lease lapsed", total),
                      {{"worker", worker_label()}, {"queue", settings_.queues[queue_index]}});
        pass->taken_back += total;
        if (--pass->queues_left == 0) pass->then(pass->taken_back);
    };
    if (!commands_ || !commands_->ready()) {
        queue_done(so_far);
        return;
    }
    auto call = queue::reap_call(queue_keys_[queue_index], reap_limit, settings_.result_ttl);
    commands_->script(
        *call.script, call.keys, call.args,
        [this, call, queue_index, pass, so_far, queue_done](std::optional<redis::Reply> reply) {
            queue::ReapStep step;
            if (reply && reply->is_error()) {
                try {
                    queue::check_reply(call, *reply);
                } catch (const queue::QueueDamagedError& error) {
                    note_damage(queue_index, error.damage);
                } catch (const std::exception& error) {
                    log::error(fmt::format("reaping failed: {}", error.what()),
                               {{"worker", worker_label()}});
                }
            } else if (reply) {
                try {
                    step = queue::parse_reap(*reply);
                } catch (const std::exception& error) {
                    log::error(fmt::format("reaping failed: {}", error.what()),
                               {{"worker", worker_label()}});
                }
                // The fault suite's crash right after a pass that took jobs back (a pass that
                // found none, as the one before the first claim often does, proves nothing).
                if (step.taken_back > 0) crash_point("in-reaper");
            }
            // More lapsed leases than one call takes: the next batch at once, so that they
            // all come back within lease + 5 s however many there are.
            if (step.more && !finishing_)
                reap_queue(queue_index, pass, so_far + step.taken_back);
            else
                queue_done(so_far + step.taken_back);
        });
}

void Worker::schedule_renewal() {
    // A third of the lease keeps it alive through two lost renewals; at most every 2 s so that
    // a user's cancel of a running job is noticed within seconds.
    renew_timer_.expires_after(std::min(settings_.lease / 3, renew_at_most_every));
    renew_timer_.async_wait([this](auto error) {
        if (error) return;
        if (commands_ && commands_->ready()) {
            for (std::size_t q = 0; q < queue_keys_.size(); ++q) {
                std::vector<queue::HeldJob> held;
                std::vector<std::size_t> owners;
                for (const auto& slot : slots_)
                    if (slot.job && slot.job->queue_index == q && !slot.job->lease_lost) {
                        held.push_back({slot.job->claimed.id, slot.job->claimed.token});
                        owners.push_back(slot.index);
                    }
                if (held.empty()) continue;
                auto call = queue::renew_call(queue_keys_[q], settings_.lease, held);
                commands_->script(
                    *call.script, call.keys, call.args, [this, owners, call](auto reply) {
                        if (!reply || reply->is_error()) return;
                        auto statuses = queue::parse_renew(*reply);
                        for (std::size_t i = 0; i < statuses.size() && i < owners.size(); ++i) {
                            auto& slot = slots_[owners[i]];
                            if (!slot.job || slot.job->claimed.token != call.args[2 + 2 * i + 1])
                                continue;
                            if (statuses[i] == queue::RenewStatus::quarantined) {
                                slot.job->lease_lost = true;
                                log::error(
                                    "the job's record is corrupt: dead-lettered (see workq-dlq "
                                    "show); stopping its handler",
                                    {{"worker", worker_label()}, {"job", slot.job->claimed.id}});
                                stop_slot(slot, StopReason::lease_lost);
                            } else if (statuses[i] == queue::RenewStatus::lost) {
                                slot.job->lease_lost = true;
                                log::warn(
                                    "lease lost: another worker holds the job; stopping its "
                                    "handler",
                                    {{"worker", worker_label()}, {"job", slot.job->claimed.id}});
                                stop_slot(slot, StopReason::lease_lost);
                            } else if (statuses[i] == queue::RenewStatus::cancel_requested &&
                                       !slot.job->cancel_requested) {
                                slot.job->cancel_requested = true;
                                log::info(
                                    "job cancelled by a user; stopping its handler",
                                    {{"worker", worker_label()}, {"job", slot.job->claimed.id}});
                                stop_slot(slot, StopReason::cancelled);
                            }
                        }
                    });
            }
        }
        schedule_renewal();
    });
}

bool Worker::note_health(bool ok, const HandlerOutcome& outcome) {
    if (!ok && !paused_by_health_) {
        log::warn(fmt::format("health check failed ({})", outcome.describe()),
                  {{"worker", worker_label()}});
        paused_by_health_ = true;
        if (settings_.burst) {
            exit_code_ = 1;
            begin_drain("--burst: health check failed");
            return false;
        }
    } else if (ok && paused_by_health_) {
        log::info("health check passed", {{"worker", worker_label()}});
        paused_by_health_ = false;
    }
    return true;
}

void Worker::note_run_for_breaker(bool failed) {
    if (!failed) {
        // A success closes the episode: the next trip starts again from --failure-cooldown.
        failures_in_a_row_ = 0;
        breaker_trips_ = 0;
        return;
    }
    ++failures_in_a_row_;
    // Jobs that were running when it tripped finish while it is paused: their failures add to
    // nothing (the count starts afresh when it resumes).
    if (settings_.pause_after_failures <= 0 || paused_by_breaker_ ||
        failures_in_a_row_ < settings_.pause_after_failures)
        return;
    if (state_ != State::running && state_ != State::paused) return;  // draining, stopping
    // base * 2^trips, at most 10 min (or the base itself, when the user asked for more).
    auto ceiling = std::max(settings_.failure_cooldown, max_failure_cooldown);
    auto cooldown = settings_.failure_cooldown;
    for (int i = 0; i < breaker_trips_ && cooldown < ceiling; ++i)
        cooldown *= 2;
    cooldown = std::min(cooldown, ceiling);
    ++breaker_trips_;
    paused_by_breaker_ = true;
    breaker_reason_ = fmt::format(
        "{} jobs failed in a row (--pause-after-failures {}): claiming nothing for {}{}{}",
        failures_in_a_row_, settings_.pause_after_failures, format_duration(cooldown),
        breaker_trips_ > 1 ? fmt::format(" (trip {} before a success)", breaker_trips_) : "",
        settings_.health_cmd.empty() ? "" : ", then until --health-cmd passes");
    log::warn(fmt::format("breaker tripped: {}", breaker_reason_), {{"worker", worker_label()}});
    refresh_pause_state();
    breaker_timer_.expires_after(cooldown);
    breaker_timer_.async_wait([this](auto error) {
        if (!error) end_breaker_cooldown();
    });
}

void Worker::end_breaker_cooldown() {
    if (!paused_by_breaker_ || finishing_ || state_ == State::draining || state_ == State::stopped)
        return;
    auto resume = [this] {
        paused_by_breaker_ = false;
        failures_in_a_row_ = 0;
        refresh_pause_state();
    };
    if (settings_.health_cmd.empty()) {
        log::info("breaker: cooldown over; resuming", {{"worker", worker_label()}});
        resume();
        return;
    }
    run_hook(settings_.health_cmd, "health", std::min(settings_.health_interval, hook_timeout),
             [this, resume](bool ok, const HandlerOutcome& outcome) {
                 if (!paused_by_breaker_ || finishing_ || state_ == State::draining ||
                     state_ == State::stopped)
                     return;
                 if (ok) {
                     log::info("breaker: cooldown over and the health check passed; resuming",
                               {{"worker", worker_label()}});
                     resume();
                     return;
                 }
                 // The dependency is still down: stay paused and look again, as often as the
                 // periodic check would, and no later than another cooldown. The cooldown does
                 // not double for this: it doubles only when jobs fail again.
                 auto again = std::min(settings_.health_interval, settings_.failure_cooldown);
                 breaker_reason_ = fmt::format(
                     "the breaker tripped and the health check fails ({}): claiming nothing until "
                     "it passes",
                     outcome.describe());
                 log::warn(fmt::format("breaker: cooldown over but the health check fails ({}); "
                                       "staying paused, checking again in {}",
                                       outcome.describe(), format_duration(again)),
                           {{"worker", worker_label()}});
                 if (settings_.burst) {
                     exit_code_ = 1;
                     begin_drain("--burst: health check failed");
                     return;
                 }
                 refresh_pause_state();
                 breaker_timer_.expires_after(again);
                 breaker_timer_.async_wait([this](auto error) {
                     if (!error) end_breaker_cooldown();
                 });
             });
}

void Worker::schedule_health_check(Millis after) {
    health_timer_.expires_after(after);
    health_timer_.async_wait([this](auto error) {
        if (error || settings_.health_cmd.empty()) return;
        run_hook(settings_.health_cmd, "health", std::min(settings_.health_interval, hook_timeout),
                 [this](bool ok, const HandlerOutcome& outcome) {
                     if (state_ == State::draining || state_ == State::stopped || finishing_)
                         return;
                     if (!note_health(ok, outcome)) return;
                     refresh_pause_state();
                     schedule_health_check(settings_.health_interval);
                 });
    });
}

void Worker::run_hook(const std::string& command, std::string_view tag, Millis timeout,
                      std::function<void(bool ok, const HandlerOutcome&)> then) {
    HandlerRun::Params params;
    params.executable = "/bin/sh";
    params.argv = {"/bin/sh", "-c", command};
    params.env = base_env_;
    params.env.push_back("WORKQ_WORKER_ID=" + worker_id_);
    params.payload_on_stdin = false;
    params.timeout = timeout;
    params.kill_grace = settings_.kill_grace;
    params.max_result = 64 * 1024;
    params.tag = std::string(tag);
    params.guard_fd = guard_->registration_fd();
    params.cgroup_fd = cgroup_ ? cgroup_->procs_fd() : -1;
    try {
        auto run = HandlerRun::start(
            io_, std::move(params),
            [then = std::move(then), tag = std::string(tag)](HandlerOutcome outcome) {
                // A hook's stdout is not data of ours: relay it like its stderr.
                std::string_view text = outcome.result;
                while (!text.empty()) {
                    auto newline = text.find('\n');
                    log::relay(tag, text.substr(0, newline));
                    text = newline == std::string_view::npos ? std::string_view{}
                                                             : text.substr(newline + 1);
                }
                then(outcome.exited_zero(), outcome);
            });
        children_[run->pid()] = [run](int status) { run->on_exit(status); };
    } catch (const std::exception& error) {
        HandlerOutcome outcome;
        outcome.exec_error = EAGAIN;
        log::error(fmt::format("cannot run the {} hook: {}", tag, error.what()));
        asio::post(io_, [then = std::move(then), outcome] { then(false, outcome); });
    }
}

// --- HTTP (--http) -------------------------------------------------------------------------------

void Worker::serve_http() {
    http::Router router;
    // Each handler runs on the worker's loop between two events: what it reads is never
    // half-updated, and it answers from memory (no Redis), so a scrape costs the loop little.
    router.handle("/livez", [this](const http::Request&) {
        if (state_ == State::error)
            return http::text_response(503, fmt::format("error: {}", stop_reason_));
        return http::text_response(200, "ok");
    });
    router.handle("/readyz", [this](const http::Request&) {
        if (state_ == State::running) return http::text_response(200, "running");
        auto why = state_ == State::paused                               ? pause_reason_
                   : state_ == State::draining || state_ == State::error ? stop_reason_
                                                                         : std::string();
        return http::text_response(503, why.empty()
                                            ? std::string(to_string(state_))
                                            : fmt::format("{}: {}", to_string(state_), why));
    });
    router.handle("/metrics", [this](const http::Request&) {
        Gauges gauges;
        gauges.state = to_string(state_);
        for (auto state : {State::initializing, State::starting, State::running, State::paused,
                           State::draining, State::stopped, State::error})
            gauges.states.push_back(to_string(state));
        gauges.busy_slots = busy_slots();
        gauges.slots = static_cast<std::size_t>(settings_.concurrency);
        gauges.failures_in_a_row = failures_in_a_row_;
        gauges.breaker_trips = breaker_trips_;
        gauges.claims_held_back = claims_held_back_;
        gauges.uptime_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count();
        http::Response response;
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        response.body = metrics_.render(gauges);
        return response;
    });
    router.handle("/", [this](const http::Request&) {
        http::Response response;
        response.content_type = "application/json";
        response.body = worker_json();
        return response;
    });
    try {
        http_.emplace(io_, *settings_.http, std::move(router));
    } catch (const Error& error) {
        // A worker asked to answer probes that cannot would look dead to its supervisor.
        throw FatalError(fmt::format("--http: {}", error.what()));
    }
    log::info(fmt::format("serving http://{}/ (/livez, /readyz, /metrics)",
                          http::describe(http_->local_address())),
              {{"worker", worker_label()}});
}

std::string Worker::worker_json() const {
    // The registration (what the heartbeat stores) and the counters of this process.
    boost::json::array queues;
    for (const auto& queue : settings_.queues)
        queues.emplace_back(queue);
    boost::json::object worker{
        {"id", worker_id_},
        {"name", worker_label()},
        {"host", host_},
        {"pid", static_cast<long long>(::getpid())},
        {"state", to_string(state_)},
        {"reason", state_ == State::paused                               ? pause_reason_
                   : state_ == State::draining || state_ == State::error ? stop_reason_
                                                                         : std::string()},
        {"queues", std::move(queues)},
        {"concurrency", settings_.concurrency},
        {"busy", busy_slots()},
        {"processed", jobs_finished_},
        {"succeeded", jobs_succeeded_},
        {"failed", jobs_failed_},
        {"dead", jobs_dead_},
        {"released", jobs_released_},
        {"failures_in_a_row", failures_in_a_row_},
        {"started_at", format_rfc3339(started_at_ms_)},
        {"uptime_s",
         std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count()},
        {"version", WORKQ_VERSION}};
    return boost::json::serialize(worker) + "\n";
}

}  // namespace workq::work
