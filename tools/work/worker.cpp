#include "worker.hpp"

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

#include "claim_plan.hpp"
#include "cli/server.hpp"
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
#include "worker_internal.hpp"

extern char** environ;

namespace workq::work {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace detail;

namespace {

std::string hostname() {
    char buffer[256] = {};
    if (::gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
    return buffer;
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

Worker::Worker(int argc, char** argv, Settings settings)
    : argc_(argc),
      argv_(argv),
      settings_(std::move(settings)),
      worker_id_(random_token(12)),
      host_(hostname()),
      namespace_keys_("workq"),
      signals_(io_),
      children_([this] { return worker_label(); }),
      heartbeat_timer_(io_),
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
      claim_retry_timer_(io_),
      link_retry_timer_(io_),
      service_(io_) {}

std::string Worker::worker_label() const {
    return settings_.name.empty() ? worker_id_ : settings_.name;
}

void Worker::on_event(Event event, std::string_view why) {
    set_state(next(state_, event), why);
}

void Worker::set_state(State state, std::string_view why) {
    if (state == state_) return;
    auto from = state_;
    state_ = state;
    // Paused, draining, stopped or in error: jobs claimed ahead go back at once, uncounted.
    if (state != State::running) give_back_held(to_string(state));
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
        on_event(Event::pause, reason);
    } else if (!reason.empty() && reason != before) {
        // Paused already, for another reason now: say so, and show it in the registry.
        log::info(fmt::format("still paused: {}", reason), {{"worker", worker_label()}});
        heartbeat();
        service_.state_changed(to_string(state_), reason);
    } else if (reason.empty() && state_ == State::paused) {
        on_event(Event::resume);
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
    settler_.emplace(
        io_, queue_keys_.size(),
        Settler::Hooks{
            .connected = [this] { return commands_ && commands_->ready(); },
            .send =
                [this](const queue::ScriptCall& call, Settler::Sent sent) {
                    commands_->script(*call.script, call.keys, call.args, std::move(sent));
                },
            .complete_call =
                [this](std::size_t queue, const std::vector<queue::Completion>& jobs) {
                    return queue::complete_call(queue_keys_[queue], jobs, settings_.result_ttl);
                },
            .fatal = [this](const std::string& message) { fatal(message); },
            .answered = [this] { settler_answered(); },
            .label = [this] { return worker_label(); },
            // The claim that follows one on its way carries the successes (a single link: on a
            // cluster's several, the next claim may not reach the queue's).
            .claim_coming =
                [this](std::size_t) {
                    return claims_in_flight_ > 0 && claim_links_.size() == 1 &&
                           state_ == State::running;
                }});
    leases_.emplace(
        io_, queue_keys_, settings_.queues,
        Leases::Hooks{
            .connection = [this] { return commands_; },
            .held =
                [this] {
                    std::vector<Leases::Held> held;
                    for (const auto& slot : slots_)
                        if (slot.job && !slot.job->lease_lost)
                            held.push_back({slot.job->queue_index, slot.job->claimed.id,
                                            slot.job->claimed.token});
                    // Jobs claimed ahead, not started yet: leased like running ones.
                    for (const auto& claimed : claim_ahead_.jobs())
                        held.push_back({claimed.queue_index, claimed.id, claimed.token});
                    // Outcomes the server has not taken yet: the job is still ours.
                    for (auto& job : settler_->held())
                        held.push_back({job.queue, std::move(job.id), std::move(job.token)});
                    return held;
                },
            .news = [this](const Leases::Held& held,
                           queue::RenewStatus status) { on_lease_news(held, status); },
            .lease = [this] { return settings_.lease; },
            .result_ttl = [this] { return settings_.result_ttl; },
            .reaper_pass =
                [this](long long) {
                    // Schedules ride on the reaper's period: a busy worker fires and
                    // keeps its watch.
                    if (state_ == State::running || state_ == State::paused)
                        firer_->on_reaper_pass();
                },
            .damaged = [this](std::size_t queue,
                              const std::string& damage) { note_damage(queue, damage); },
            .label = [this] { return worker_label(); }});
    rate_held_until_.resize(queue_keys_.size());
    hold_logged_.resize(queue_keys_.size());
    starts_owed_.resize(queue_keys_.size());
    claim_ahead_ = ClaimAhead(
        static_cast<std::size_t>(std::min(settings_.claim_ahead, settings_.concurrency)));
    firer_.emplace(
        io_, namespace_keys_, queue_keys_, worker_id_, [this] { return commands_; },
        [this] { return worker_label(); });
    {
        // Reachable at start, or exit 3; this also starts the embedded server when it is the one.
        auto connection = cli::connect(server_);
        plan_calls(connection.is_cluster());
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
    children_.start(worker_id_);
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

    children_.stop();
    if (startup_failure_) throw RedisError(*startup_failure_);
    log_summary(true);
    if (state_ != State::error && settings_.name.empty()) {
        std::error_code ignored;
        fs::remove_all(state_base_, ignored);
    }
    return exit_code_;
}

// --- connection ----------------------------------------------------------------------------------

void Worker::plan_calls(bool cluster) {
    // On a cluster each queue's keys live in the slot of its hash tag, and a call may name the
    // keys of one slot only: queues in different slots are claimed one link after another, in
    // the order given, and waited on by one blocking connection per slot (claim_plan.hpp).
    std::vector<int> slots;
    for (const auto& keys : queue_keys_)
        slots.push_back(redis::key_slot(keys.meta()));
    claim_links_ = claim_links(slots, cluster);
    link_of_queue_.assign(queue_keys_.size(), 0);
    for (std::size_t link = 0; link < claim_links_.size(); ++link)
        for (auto q : claim_links_[link])
            link_of_queue_[q] = link;
    link_skips_ = LinkSkips(claim_links_.size(), blocking_retry, max_link_pause);
    link_error_logged_.assign(claim_links_.size(), {});
    waiters_.clear();
    for (auto& group : wait_groups(slots, cluster))
        waiters_.push_back(Waiter{std::move(group), nullptr, false});
    if (claim_links_.size() > 1)
        log::info(fmt::format("serving {} queues in {} slots of the cluster: each claim goes "
                              "queue by queue in the order given, and {} connections wait for "
                              "jobs (one per slot)",
                              queue_keys_.size(), waiters_.size(), waiters_.size()),
                  {{"worker", worker_label()}});
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
        [this](const std::string& reason) { on_commands_lost(reason); },
        /*ask_cluster_mode=*/true);
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
    // The library (Redis >= 7: FCALL) first; the EVAL texts for EVALSHA where it is refused.
    commands_->load_library(queue::embedded_library());
    for (const auto& script : queue::embedded_scripts())
        commands_->command({"SCRIPT", "LOAD", std::string(script.text)}, [](auto) {});
    // The longest argument this server takes. CONFIG is refused to a least-privilege user:
    // then the limit stays as it was (Redis's default at first), silently.
    commands_->command({"CONFIG", "GET", "proto-max-bulk-len"}, [this](auto reply) {
        if (!reply || !reply->is_array() || reply->elements.size() != 2) return;
        try {
            auto limit = std::stoull(reply->elements[1].as_string());
            if (limit >= Settler::smallest_request_limit) bulk_limit_ = limit;
        } catch (const std::exception&) {
        }
    });
    if (state_ == State::initializing) {
        heartbeat();
        on_event(Event::connected);
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
                     on_event(Event::start_failed,
                              fmt::format("--on-start failed ({}); claiming nothing",
                                          outcome.describe()));
                     finish();
                 });
        return;
    }
    settler_->flush();
    heartbeat();
    if (state_ == State::running || state_ == State::paused) firer_->start();
    maybe_claim();
}

void Worker::on_commands_lost(const std::string& reason) {
    // Claims on their way are lost with the connection (their jobs come back with their leases):
    // nothing to wait for. A drain that waited only on them finishes below.
    claims_in_flight_ = slots_claimed_for_ = 0;
    claim_ahead_.claims_lost();
    ++claim_epoch_;
    // Their replies are dropped (the epoch), so no end_claim_chain says that no claim is on its
    // way: successes that waited for the next claim go to the outbox (sent after reconnecting)
    // instead of waiting for a claim a drain or a pause would never send.
    settler_->claims_ended();
    for (std::size_t link = 0; link < link_skips_.links(); ++link)
        link_skips_.abandoned(link);  // a retry lost with the connection is not on its way
    firer_->on_connection_lost();
    close_waiters();
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
    check_drained();
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
    on_event(Event::started);
    if (paused_by_signal_ || paused_by_health_) refresh_pause_state();
    schedule_heartbeat(queue::heartbeat_interval);
    schedule_summary();
    leases_->schedule_reaper();
    firer_->start();
    leases_->schedule_renewal();
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
    leases_->reap_all([this](long long) {
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
    on_event(Event::drain, why);
    close_waiters();
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
        settler_->drop_all();
        finish();
    });
    if (urgent) begin_drain(why, true);
    check_drained();
}

void Worker::check_drained() {
    if (finishing_ || (state_ != State::draining && state_ != State::error)) return;
    // A claim on its way may bring jobs: they are given back (through the settler) before the
    // worker ends, or they would wait for their leases to lapse. Its callback looks again.
    if (busy_slots() > 0 || claims_in_flight_ > 0 || settler_->pending()) return;
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
    leases_->stop();
    // Before the last heartbeat, on the same connection: its reply ends the process.
    firer_->stop();
    health_timer_.cancel();
    breaker_timer_.cancel();
    runtime_timer_.cancel();
    retry_timer_.cancel();
    hold_timer_.cancel();
    claim_retry_timer_.cancel();
    link_retry_timer_.cancel();
    summary_timer_.cancel();
    auto unregister_and_stop = [this] {
        on_event(Event::drained);
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
    on_event(Event::fatal, message);
    if (!was_draining) begin_drain(message);
    check_drained();
}

}  // namespace workq::work
