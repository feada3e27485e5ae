// The worker: wires its units together on one event loop. Every event arrives on that loop:
// signals (as a self-pipe, via asio::signal_set), child exits, pipe I/O, Redis replies, and
// timers for leases, heartbeats, the reaper and health checks. No work runs in a signal handler.
//   lifecycle.hpp   the state x event table (initializing -> starting -> running <-> paused ->
//                   draining -> stopped; error) that every state change goes through
//   settler.hpp     outcomes owed to the server: batches, outbox, retries after reconnect
//   children.hpp    handler and hook processes: groups, the guard, reaping, orphans
//   leases.hpp      renewal of the worker's leases, the reaper of everyone's lapsed ones
//   claim_plan.hpp  on a cluster: queues per claim call and per blocking wait
//   claim_ahead.hpp --claim-ahead: the jobs held beyond the busy slots, what a claim asks for
//   handler_run.hpp, persistent_handler.hpp, output.hpp   running COMMAND, bounded output
// The Worker's own code is split by concern: worker.cpp (start, connection, lifecycle,
// signals, reload), worker_claim.cpp (claiming and waiting), worker_jobs.cpp (slots, running
// a job, reporting its outcome), worker_health.cpp (hooks, --health-cmd, the breaker),
// worker_status.cpp (registry heartbeat, summary lines, --http).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "children.hpp"
#include "claim_ahead.hpp"
#include "claim_plan.hpp"
#include "cli/server.hpp"
#include "handler_run.hpp"
#include "http/server.hpp"
#include "leases.hpp"
#include "lifecycle.hpp"
#include "metrics.hpp"
#include "persistent_handler.hpp"
#include "queue/keys.hpp"
#include "queue/transitions.hpp"
#include "redis/async_connection.hpp"
#include "schedule_firer.hpp"
#include "service_notify.hpp"
#include "settings.hpp"
#include "settler.hpp"

namespace workq::work {

class Worker {
  public:
    Worker(int argc, char** argv, Settings settings);
    // Runs until the worker stops; returns the exit code. Throws RedisError (exit 3) when the
    // server cannot be reached at start and FatalError (exit 4) when COMMAND cannot run.
    int run();

  private:
    struct Job {
        std::size_t queue_index = 0;
        queue::ClaimedJob claimed;
        bool lease_lost = false;
        bool cancel_requested = false;
        std::chrono::steady_clock::time_point claimed_at;
    };
    struct Slot {
        std::size_t index = 0;
        std::optional<Job> job;
        std::shared_ptr<HandlerRun> run;                // per-job mode: the running handler
        std::shared_ptr<PersistentHandler> persistent;  // --persistent: the slot's process
        bool persistent_stopping =
            false;  // shut down (draining, or retired: see retire_persistent)
    };
    // What a run of a job came to, whichever kind of handler ran it (per job or persistent).
    struct RunResult {
        enum class Kind { succeeded, failed, released, exec_failed };
        Kind kind = Kind::failed;
        bool permanent = false;     // dead at once (exit code listed, or "retry": false)
        bool cancelled = false;     // stopped because a user cancelled the job
        std::string result;         // succeeded
        std::size_t dropped = 0;    // bytes of result cut beyond --max-result
        std::string error, reason;  // failed: the error text and its short reason
        std::string describe;       // for logs
        Millis duration{0};
        int exec_error = 0;
    };
    // lifecycle: every change goes through lifecycle.hpp's table.
    void on_event(Event event, std::string_view why = {});
    void set_state(State state, std::string_view why);
    // Why the worker claims nothing, by precedence (SIGTSTP, the breaker, the health check);
    // empty when nothing holds it back.
    std::string pause_reason() const;
    void refresh_pause_state();
    void connect_commands();
    // How claims and waits are grouped (claim_plan.hpp): one call over every queue, or on a
    // cluster whose served queues hash to different slots, one slot per call.
    void plan_calls(bool cluster);
    void on_commands_ready();
    void on_commands_lost(const std::string& reason);
    void start_running();
    void begin_drain(std::string_view why, bool urgent = false);
    void check_drained();
    void finish();
    void fatal(std::string_view message);

    // events
    void watch_signals();
    void on_signal(int signal_number);
    // SIGHUP and SIGUSR1: `signal_name` names the one that asked, in the logs.
    void reload_settings(std::string_view signal_name);

    // jobs
    // A claim: a chain of calls, one per link of claim_links_ (a single call but on a cluster
    // whose queues hash to different slots), each asking for what the links before it left.
    struct ClaimChain {
        std::size_t wanted = 0, left = 0;  // asked for in all; not claimed yet
        std::size_t ahead_left = 0;        // of `left`, the places ahead (--claim-ahead)
        ClaimAhead::Ask ask;               // what the chain asked for, as ClaimAhead counts it
        std::size_t link = 0;              // the link on its way
        long long epoch = 0;
        bool answered = false;     // some link answered (else every link asked was refused)
        bool retry = false;        // a refused link's retry: that link only (LinkSkips)
        std::string refusal;       // the last link's refusal
        queue::ClaimResult total;  // holds, damage and hints merged (jobs start as they come)
    };
    // A blocking wait on the wake-up lists of a group of queues (wait_groups in claim_plan.hpp):
    // its own connection, one BLPOP on its way at most.
    struct Waiter {
        std::vector<std::size_t> queues;
        std::shared_ptr<redis::AsyncConnection> connection;
        bool in_flight = false;
    };
    void maybe_claim();
    void claim_link(std::shared_ptr<ClaimChain> chain);
    // `loan`: the successes the call carried (README, "One round"), given back to the settler
    // with their statuses, or unsent when the connection failed.
    void on_claim_link(const std::shared_ptr<ClaimChain>& chain, const queue::ScriptCall& call,
                       Settler::Loan loan, std::optional<redis::Reply> reply);
    // The chain is over: counters back, holds and hints applied; with `look_again`, claims more
    // or waits as a claim's end does.
    void end_claim_chain(ClaimChain& chain, bool look_again);
    void close_waiters();
    void wait_on(std::size_t waiter_index, std::optional<Millis> next_due);
    // No handler could be started (no pipe, no process): claim nothing for shortage_pause.
    void pause_claims_for_shortage();
    void idle_wait(std::optional<Millis> next_due);
    // What a claim or a reap found of queue `queue_index`'s damage (nullopt: none): logged when
    // it changes, not at every claim (README, "Damaged data").
    void note_damage(std::size_t queue_index, std::optional<std::string> what);
    // The server refused a claim or the wait (READONLY, NOREPLICAS, MISCONF...): claim again
    // after blocking_retry, not at once (a refusal comes back at once: a tight loop). Logs an
    // error once per distinct message; `claim_recovered` says so when claims work again.
    void claim_refused(const std::string& error);
    void claim_recovered();
    // A chain of several links (a cluster): link `link` was refused. Logged once per distinct
    // message; the link is left out of the chains for a while (LinkSkips in claim_plan.hpp) and
    // link_retry_timer_ claims again when it is due.
    // The chain goes on to its next link (when some of its slots are still wanted), or ends.
    void next_claim_link(const std::shared_ptr<ClaimChain>& chain);
    void link_refused(std::size_t link, const std::string& error);
    void arm_link_retry();
    // The link a chain asks after `link` (skipping those paused); claim_links_.size(): none.
    std::size_t next_link(std::size_t from);
    void start_job(Slot& slot, Job job);
    // --claim-ahead: starts held jobs in the slots that are free (and not claimed for by a
    // claim on its way); gives them all back (release, uncounted) when the worker leaves
    // `running`. Start notices of jobs claimed ahead go out batched per queue (flush_starts).
    void start_held_jobs();
    void give_back_held(std::string_view why);
    void flush_starts();
    void log_claimed(const Job& job) const;  // at debug
    // Records a job as dead at once with `error` (a payload no run of COMMAND can take).
    void fail_permanently(Job job, const std::string& error, const std::string& reason);
    void on_handler_done(std::size_t slot_index, HandlerOutcome outcome);
    void on_persistent_done(std::size_t slot_index, PersistentOutcome outcome);
    // Settles a finished job according to what its run came to (or drops the outcome when the
    // lease was lost), then claims more.
    void report(Job job, RunResult run);
    // --persistent: starts the slot's long-lived handler (if it has none).
    void start_persistent(Slot& slot);
    // --persistent: a slot past the concurrency (lowered by a reload) stops its handler once it
    // has no job (stdin closed, then the kill grace, as at shutdown), and starts one again if
    // the concurrency grew back meanwhile. Does nothing to a slot within the concurrency.
    void retire_persistent(Slot& slot);
    // Stops whatever runs the slot's job (lease lost, cancel, shutdown).
    void stop_slot(Slot& slot, StopReason reason);
    bool slot_ready(const Slot& slot) const;
    // Gives a claimed job back, uncounted (through the settler).
    void release(const Job& job, std::function<void(const redis::Reply&)> on_reply = {});
    // Settles `job` (its lease is renewed until the server has taken the outcome).
    void settle(const Job& job, queue::ScriptCall call,
                std::function<void(const redis::Reply&)> on_reply);
    void settler_answered();
    // Renewal news of a held job: stop its handler (lease lost, or a user's cancel).
    void on_lease_news(const Leases::Held& held, queue::RenewStatus status);
    std::size_t free_slots() const;
    std::size_t busy_slots() const;

    // periodic work
    void schedule_heartbeat(Millis after);
    // The periodic summary line (--summary-interval) and the final one, at info.
    void schedule_summary();
    void log_summary(bool final);
    // With `exiting`, the worker's last word: its final registration (state, reason) is kept
    // among the exited workers.
    void heartbeat(bool exiting = false, std::function<void()> then = {});
    // --burst found nothing to claim and nothing running: take back what is overdue, then
    // claim again when something came back, else sleep until the first retry of a job it ran
    // is due, else stop.
    void burst_idle();
    bool note_holds(const std::vector<queue::Hold>& holds);  // true: some queue was held back
    bool rate_hold_armed() const;
    void schedule_health_check(Millis after);
    // Records a health check's verdict (paused while failing; a failing --burst drains).
    // Returns false when the worker is now draining.
    bool note_health(bool ok, const HandlerOutcome& outcome);
    // The breaker (--pause-after-failures): counts a finished run (a failure, or a success that
    // resets it), and trips when the count reaches the setting.
    void note_run_for_breaker(bool failed);
    // The cooldown is over: consult --health-cmd (if any) and resume.
    void end_breaker_cooldown();
    void run_hook(const std::string& command, std::string_view tag, Millis timeout,
                  std::function<void(bool ok, const HandlerOutcome&)> then);

    // --http: listens (before the loop runs; FatalError when it cannot) and serves /livez,
    // /readyz, /metrics and / on the worker's loop.
    void serve_http();
    std::string worker_json() const;

    // The slot's WORKQ_STATE_DIR, and making it (an error when it cannot be made).
    std::filesystem::path slot_state_dir(std::size_t slot_index) const;
    std::error_code make_slot_state_dir(std::size_t slot_index) const;
    std::vector<std::string> handler_env(const Job& job, std::size_t slot_index) const;
    std::string worker_label() const;

    int argc_;
    char** argv_;
    Settings settings_;
    cli::ServerSettings server_;
    std::string worker_id_;
    std::string host_;
    std::string executable_;
    std::vector<std::string> base_env_;
    std::vector<queue::QueueKeys> queue_keys_;
    queue::NamespaceKeys namespace_keys_;
    std::filesystem::path state_base_;

    boost::asio::io_context io_;
    boost::asio::signal_set signals_;
    Children children_;
    std::optional<Settler> settler_;
    std::optional<Leases> leases_;
    std::shared_ptr<redis::AsyncConnection> commands_;
    std::vector<std::vector<std::size_t>> claim_links_;  // see ClaimChain
    std::vector<std::size_t> link_of_queue_;             // queue index -> its link
    LinkSkips link_skips_;                               // links refused lately (a cluster)
    std::vector<std::string> link_error_logged_;         // per link, until it answers
    std::vector<Waiter> waiters_;

    State state_ = State::initializing;
    bool paused_by_signal_ = false, paused_by_health_ = false, paused_by_breaker_ = false;
    std::string pause_reason_;  // what the registry and the logs say while paused
    // The breaker: failed runs in a row, trips since the last success (the cooldown doubles
    // with each), and what the pause says.
    long long failures_in_a_row_ = 0;
    int breaker_trips_ = 0;
    std::string breaker_reason_;
    // Claims on their way, and the slots they would fill (kept for their jobs). A second claim
    // goes out when slots free while one is on its way, so that Redis has the next request
    // before the first reply is in (issue 16). Calls of a lost connection count no more: their
    // epoch is past.
    std::size_t claims_in_flight_ = 0, slots_claimed_for_ = 0;
    long long claim_epoch_ = 0;
    bool started_running_ = false, finishing_ = false;
    bool first_health_check_done_ = false;
    bool first_reap_done_ = false;  // nothing is claimed before overdue jobs are taken back
    bool burst_reap_in_flight_ = false;
    std::map<std::size_t, std::string> damaged_queues_;  // queue index -> its damage, as logged
    std::string registry_damage_;                        // the registry's, as logged
    // The longest argument the server takes (its proto-max-bulk-len, read at each connect when
    // CONFIG GET is allowed; else Redis's default): longer results are cut to it.
    std::size_t bulk_limit_ = std::size_t(512) << 20;
    bool on_start_failed_ = false;  // the one exit --on-stop is skipped on
    std::string stop_reason_;       // why it drained or failed, for its final registration
    // --burst: the jobs it ran that wait for a retry, by id, and when each is due (the steady
    // clock: the worker chose the delay, and the server's due time is no later than this).
    std::map<std::string, std::chrono::steady_clock::time_point> retries_;
    std::chrono::steady_clock::time_point last_claim_sent_;
    bool short_of_resources_ = false;  // see pause_claims_for_shortage
    int exit_code_ = 0;
    std::optional<std::string> startup_failure_;
    std::vector<Slot> slots_;
    ClaimAhead claim_ahead_;
    // Start notices owed (per queue: id, token), sent once per turn of the loop.
    std::vector<std::vector<std::pair<std::string, std::string>>> starts_owed_;
    bool starts_flush_posted_ = false;
    long long claim_sequence_ = 0;
    long long jobs_started_ = 0, jobs_finished_ = 0, jobs_failed_ = 0, jobs_dead_ = 0;
    long long jobs_succeeded_ = 0, jobs_released_ = 0;
    long long finished_at_last_summary_ = 0;
    std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
    int reconnect_attempt_ = 0;

    boost::asio::steady_timer heartbeat_timer_, health_timer_;
    boost::asio::steady_timer runtime_timer_, shutdown_timer_, hard_stop_timer_, reconnect_timer_;
    boost::asio::steady_timer retry_timer_;  // --burst: until the first retry is due
    boost::asio::steady_timer summary_timer_;
    boost::asio::steady_timer shortage_timer_;
    boost::asio::steady_timer breaker_timer_;  // the breaker's cooldown
    // Until a queue's rate limit allows its next starts (workq-queue limit): the claim said when.
    // Meanwhile the worker does not wait on that queue's wake-ups; this timer claims again then.
    boost::asio::steady_timer hold_timer_;
    // After a refused claim or wait: see claim_refused. The error last logged, until recovered.
    boost::asio::steady_timer claim_retry_timer_;
    bool claim_retry_armed_ = false;
    boost::asio::steady_timer link_retry_timer_;  // when a claim link paused (refused) is due
    std::string claim_error_logged_;
    std::vector<std::optional<std::chrono::steady_clock::time_point>> rate_held_until_;
    std::vector<bool> hold_logged_;   // a queue's first hold is logged at info, later ones at debug
    long long claims_held_back_ = 0;  // claims that a queue's limit held back (for metrics)
    ServiceNotifier service_;  // systemd: READY, STOPPING, STATUS, WATCHDOG (when NOTIFY_SOCKET)
    std::optional<ScheduleFirer> firer_;  // workq-schedule's ticks of our queues
    WorkerMetrics metrics_;
    long long started_at_ms_ = 0;  // the wall clock at start, for `/`
    // Last: destroyed first, before the loop and everything its handlers read.
    std::optional<http::Server> http_;
};

}  // namespace workq::work
