// The worker: an explicit state machine (initializing -> starting -> running <-> paused ->
// draining -> stopped; error) driven by one event loop. Every event arrives on that loop:
// signals (as a self-pipe, via asio::signal_set), child exits, pipe I/O, Redis replies, and
// timers for leases, heartbeats, the reaper and health checks. No work runs in a signal handler.
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

#include "cli/server.hpp"
#include "handler_run.hpp"
#include "http/server.hpp"
#include "metrics.hpp"
#include "persistent_handler.hpp"
#include "queue/keys.hpp"
#include "queue/transitions.hpp"
#include "redis/async_connection.hpp"
#include "schedule_firer.hpp"
#include "service_notify.hpp"
#include "settings.hpp"
#include "util/cgroup.hpp"
#include "util/process.hpp"

namespace workq::work {

enum class State { initializing, starting, running, paused, draining, stopped, error };
std::string_view to_string(State state);

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
    struct Outgoing {  // a settle that must reach the server, retried across reconnects
        Outgoing(queue::ScriptCall script_call,
                 std::function<void(const redis::Reply&)> reply_handler,
                 std::function<void()> answered_handler = {})
            : call(std::move(script_call)),
              on_reply(std::move(reply_handler)),
              answered(std::move(answered_handler)) {}
        queue::ScriptCall call;
        std::function<void(const redis::Reply&)> on_reply;
        std::function<void()> answered;  // once the server answered (even with an error)
        int lost = 0;                    // times the connection died while it was on its way
    };
    // A success waiting to be settled. Successes of one queue go out as one `complete` call
    // whenever none of that queue's is on its way: the batch grows with the load, and no timer
    // ever holds a settle back.
    struct PendingSuccess {
        std::string id, token, result;
        std::size_t dropped = 0;
        std::function<void(queue::Settle)> settled;
    };
    struct SuccessBatch {
        std::vector<PendingSuccess> pending;
        bool in_flight = false;
    };

    // lifecycle
    void set_state(State state, std::string_view why = {});
    // Why the worker claims nothing, by precedence (SIGTSTP, the breaker, the health check);
    // empty when nothing holds it back.
    std::string pause_reason() const;
    void refresh_pause_state();
    void connect_commands();
    // Exit 2 when the queues served live on different slots of a cluster.
    void refuse_cross_slot_queues() const;
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
    void reap_children();
    // Kills what the worker inherited as a subreaper: a handler's (or hook's) descendant that
    // left its process group (timeout, setsid) and whose parent died. Called when a child
    // exits and with every heartbeat (an orphan makes no SIGCHLD of ours until it dies).
    void kill_inherited();
    // SIGHUP and SIGUSR1: `signal_name` names the one that asked, in the logs.
    void reload_settings(std::string_view signal_name);

    // jobs
    void maybe_claim();
    // No handler could be started (no pipe, no process): claim nothing for shortage_pause.
    void pause_claims_for_shortage();
    void idle_wait(std::optional<Millis> next_due);
    // What a claim or a reap found of queue `queue_index`'s damage (nullopt: none): logged when
    // it changes, not at every claim (README, "Damaged data").
    void note_damage(std::size_t queue_index, std::optional<std::string> what);
    void start_job(Slot& slot, Job job);
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
    void settle(Outgoing outgoing);
    // A success report the server refuses for its size (it hung up on it, again and again, or
    // said "Protocol error"): its results cut so that any Redis takes it (see worker.cpp). False
    // when there was nothing to cut: it goes again unchanged, as after any lost connection.
    bool cut_refused_settle(Outgoing& outgoing, std::string_view why);
    // Sends the queue's pending successes as one call, unless one of its calls is on the way.
    void send_successes(std::size_t queue_index);
    // Outcomes not yet answered by the server: in flight, in the outbox, or waiting to be sent.
    bool settles_pending() const;
    void flush_outbox();
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
    void schedule_reaper();
    // Takes back every lapsed lease of every queue, in bounded batches (at once again while the
    // last batch says more remain), then calls `then` with how many came back. Lost replies
    // count as nothing taken back: `then` is always called.
    struct ReapPass;
    void reap_all(std::function<void(long long taken_back)> then);
    void reap_queue(std::size_t queue_index, std::shared_ptr<ReapPass> pass, long long so_far);
    // --burst found nothing to claim and nothing running: take back what is overdue, then
    // claim again when something came back, else sleep until the first retry of a job it ran
    // is due, else stop.
    void burst_idle();
    bool note_holds(const std::vector<queue::Hold>& holds);  // true: some queue was held back
    bool rate_hold_armed() const;
    void schedule_renewal();
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
    std::optional<HandlerCgroup> cgroup_;  // where the system lets the worker have one
    GuardScope guard_scope_;               // the marker and cgroup every guard it starts kills
    std::optional<GroupGuard> guard_;
    std::shared_ptr<redis::AsyncConnection> commands_;
    std::shared_ptr<redis::AsyncConnection> blocking_;

    State state_ = State::initializing;
    bool paused_by_signal_ = false, paused_by_health_ = false, paused_by_breaker_ = false;
    std::string pause_reason_;  // what the registry and the logs say while paused
    // The breaker: failed runs in a row, trips since the last success (the cooldown doubles
    // with each), and what the pause says.
    long long failures_in_a_row_ = 0;
    int breaker_trips_ = 0;
    std::string breaker_reason_;
    bool claim_in_flight_ = false, blpop_in_flight_ = false;
    bool started_running_ = false, finishing_ = false;
    bool first_health_check_done_ = false;
    bool first_reap_done_ = false;  // nothing is claimed before overdue jobs are taken back
    std::map<std::size_t, std::string> damaged_queues_;  // queue index -> its damage, as logged
    std::string registry_damage_;                        // the registry's, as logged
    std::string blpop_error_;                            // the last BLPOP's error, as logged
    // The longest argument the server takes (its proto-max-bulk-len, read at each connect when
    // CONFIG GET is allowed; else Redis's default): longer results are cut to it.
    std::size_t bulk_limit_ = std::size_t(512) << 20;
    bool burst_reap_in_flight_ = false;
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
    std::map<pid_t, std::function<void(int wait_status)>> children_;  // pid -> its exit
    std::deque<Outgoing> outbox_;
    std::vector<SuccessBatch> successes_;  // per queue, in the order of settings_.queues
    std::size_t settles_in_flight_ = 0;
    long long claim_sequence_ = 0;
    long long jobs_started_ = 0, jobs_finished_ = 0, jobs_failed_ = 0, jobs_dead_ = 0;
    long long jobs_succeeded_ = 0, jobs_released_ = 0;
    long long finished_at_last_summary_ = 0;
    std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
    int reconnect_attempt_ = 0;

    boost::asio::steady_timer heartbeat_timer_, reaper_timer_, renew_timer_, health_timer_;
    boost::asio::steady_timer runtime_timer_, shutdown_timer_, hard_stop_timer_, reconnect_timer_;
    boost::asio::steady_timer retry_timer_;  // --burst: until the first retry is due
    boost::asio::steady_timer summary_timer_;
    boost::asio::steady_timer shortage_timer_;
    boost::asio::steady_timer breaker_timer_;  // the breaker's cooldown
    // Until a queue's rate limit allows its next starts (workq-queue limit): the claim said when.
    // Meanwhile the worker does not wait on that queue's wake-ups; this timer claims again then.
    boost::asio::steady_timer hold_timer_;
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
