// Every change of a job's state, as one call of one Lua script (lib/lua/<name>.lua).
//
// Each transition is a pair: a function that builds the script call, and one that reads its
// reply. The blocking tools send calls over redis::Connection (queue/client.hpp); the worker
// sends the same calls over its asynchronous connection. Builders never fail; parsers throw
// RedisError when the reply has the wrong shape, DataVersionError when the queue was written by
// a newer data model, and QueueDamagedError when a structure of the queue holds a value of the
// wrong type (the script then changed nothing: README, "Damaged data").
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "queue/keys.hpp"
#include "redis/reply.hpp"
#include "redis/script.hpp"
#include "util/errors.hpp"

namespace workq::queue {

using Millis = std::chrono::milliseconds;

// The queue's data was written by a newer workq; this one refuses to touch it.
struct DataVersionError : Error {
    using Error::Error;
};

// A structure of a queue (or of the namespace's registry) holds a value of another type than
// workq keeps there: the script refused before changing anything. `damage` names the key, what
// it holds and what workq keeps there.
struct QueueDamagedError : Error {
    QueueDamagedError(std::string key, std::string damage);
    std::string key;     // e.g. "{workq:q1}:meta"
    std::string damage;  // "{workq:q1}:meta holds a string where workq keeps a hash"
};

// The queue a key of the form "{NS:QUEUE}:..." belongs to ("" for a namespace key).
std::string queue_of_key(std::string_view key);

struct ScriptCall {
    const redis::ScriptSource* script = nullptr;
    std::vector<std::string> keys;
    std::vector<std::string> args;
};

// Throws DataVersionError, QueueDamagedError or RedisError when `reply` is an error reply of
// `call`'s script.
void check_reply(const ScriptCall& call, const redis::Reply& reply);

// For a reply to a plain command on a queue's key: a WRONGTYPE error becomes QueueDamagedError
// naming `key` (which holds something else than `kind`), any other error RedisError; else the
// reply itself.
const redis::Reply& expect_type(const redis::Reply& reply, std::string_view key,
                                std::string_view kind);

enum class JobState { scheduled, waiting, running, succeeded, dead, cancelled, unknown };
std::string_view to_string(JobState state);
JobState parse_job_state(std::string_view text);  // unknown for anything else

// --- enqueue -------------------------------------------------------------------------------------
struct EnqueueOptions {
    long long priority = 0;
    long long max_attempts = 10;
    std::optional<Millis> timeout;  // nullopt: the worker's
    Millis delay{0};
    std::optional<long long> due_at_ms;  // absolute epoch ms; wins over delay
    std::string unique_key;              // empty: none
    bool caller_ids = false;             // ids are the caller's (--id): an existing one is kept
    bool notify = false;                 // push <p>done:<id> when each job ends (--wait)
    // The deadline (server ms) of the ids' namespace reservation (reserve_id_call): past it
    // the call makes nothing (EnqueueStatus::reservation_lapsed). nullopt: not reserved.
    std::optional<long long> id_fence_ms;
};
struct NewJob {
    std::string_view id;
    std::string_view payload;
};
// reservation_lapsed: the id's reservation lapsed before the call ran; nothing was made.
enum class EnqueueStatus { created, existing, collision, reservation_lapsed };
struct EnqueueResult {
    EnqueueStatus status;
    std::string id;  // the new job's, or the existing one's
};
ScriptCall enqueue_call(const QueueKeys& keys, const EnqueueOptions& options,
                        std::span<const NewJob> jobs);
// `jobs` are those the call sent (the reply names only the jobs it did not create).
std::vector<EnqueueResult> parse_enqueue(const redis::Reply& reply, std::span<const NewJob> jobs);

// --- namespace-wide ids -------------------------------------------------------------------------
// A caller-chosen id is reserved for one queue before the enqueue that makes it, so that two
// callers can never make it in two queues (README, "Ids across queues").
struct IdReservation {
    bool held = false;             // this queue holds the reservation now
    long long deadline_ms = 0;     // held: pass it as EnqueueOptions::id_fence_ms
    std::string holder;            // not held: the queue that holds it
    long long holder_left_ms = 0;  // not held: until it lapses
};
ScriptCall reserve_id_call(const NamespaceKeys& keys, std::span<const std::string> ids,
                           std::string_view queue);
std::vector<IdReservation> parse_reserve_id(const redis::Reply& reply);
// Gives back reservations of `queue` that made no job (the job was found in another queue).
ScriptCall release_id_call(const NamespaceKeys& keys, std::span<const std::string> ids,
                           std::string_view queue);

// --- settle outcomes (complete, fail, release; and the successes a claim carries) ----------------
// quarantined: the job's record could not be a job (README, "Damaged data"); the script
// dead-lettered it with the reason `corrupt`, keeping the holder's result or naming its error.
enum class Settle { done, duplicate, refused, quarantined };
// One success to record: the job, its holder's token and its result.
struct Completion {
    std::string_view id;
    std::string_view token;
    std::string_view result;
    std::size_t dropped = 0;  // bytes of output cut beyond the result bound ("truncated")
};

// --- claim ---------------------------------------------------------------------------------------
struct ClaimedJob {
    std::size_t queue_index = 0;  // into the queues given to claim_call
    std::string id;
    std::string payload;
    long long attempt = 1;
    long long max_attempts = 1;
    std::optional<Millis> timeout;
    std::string token;
    // Claimed ahead (--claim-ahead): leased, its attempt not counted until start_call says a
    // handler has it; `attempt` is the one it will be then.
    bool ahead = false;
};
// A queue a claim left out: a structure of it holds the wrong type (see QueueDamagedError).
struct QueueDamage {
    std::size_t queue_index = 0;
    std::string what;
};
// Why a queue gave fewer jobs than asked while jobs wait in it (workq-queue limit).
enum class HoldKind {
    none,
    rate,         // its rate limit: the next starts are possible after `wait`
    concurrency,  // its concurrency limit: until one of its running jobs ends (that wakes waiters)
};
struct Hold {
    HoldKind kind = HoldKind::none;
    Millis wait{0};  // rate: until as many places as the worker still wants (or all) are free
};
struct ClaimResult {
    std::vector<Settle> settled;      // one per success the call carried, in its order
    std::optional<Millis> next_due;   // until the earliest scheduled job, if any
    std::optional<Millis> next_tick;  // until the earliest schedule tick (0: due), if any
    std::vector<Hold> holds;          // one per queue given to claim_call
    std::vector<QueueDamage> damaged;
    std::vector<ClaimedJob> jobs;
};
// A success a claim carries: settled first, exactly as complete_call would settle it, in the
// same script call (one round trip for the settle and the next claim).
struct ClaimSuccess {
    std::size_t queue_index = 0;  // into the queues given to claim_call
    Completion job;
};
// Of the jobs taken, the first max_jobs - ahead start now, any after them are claimed ahead
// (--claim-ahead). `successes` are settled (kept for `result_ttl`) before the claim; their
// statuses are ClaimResult::settled.
ScriptCall claim_call(std::span<const QueueKeys> queues, std::string_view worker_id,
                      std::string_view token_base, Millis lease, std::size_t max_jobs,
                      std::size_t ahead = 0, std::span<const ClaimSuccess> successes = {},
                      Millis result_ttl = Millis(0));
ClaimResult parse_claim(const redis::Reply& reply);

// --- settle: complete, fail, release -------------------------------------------------------------
// Settles one job or a batch (of one queue) in one call; each job is judged on its own.
ScriptCall complete_call(const QueueKeys& keys, std::span<const Completion> jobs,
                         Millis result_ttl);
// One verdict per job of the call, in its order.
std::vector<Settle> parse_complete(const redis::Reply& reply);
// Cuts the results a complete_call carries, each to the same share, so that all its arguments
// add up to at most `budget` bytes; each cut is added to the job's dropped bytes (its record
// says `truncated`, as for --max-result). Returns false, changing nothing, when the call is not
// a complete_call or fits already.
bool cut_results(ScriptCall& call, std::size_t budget);
Settle parse_settle(const redis::Reply& reply);

struct FailOutcome {
    Settle settle = Settle::refused;
    JobState state = JobState::unknown;
    long long due_ms = 0;  // for scheduled: when it runs again (server epoch ms)
};
// The longest error text stored per attempt (CONTRACT.md §4: a handler's last 4 KiB); the
// fail script keeps the last max_error_bytes of a longer one, whatever the caller sent.
constexpr std::size_t max_error_bytes = 4096;
// retry_delay nullopt: a permanent failure, dead at once. `error` is cut to its last
// max_error_bytes (a persistent handler's reply may carry any length).
ScriptCall fail_call(const QueueKeys& keys, std::string_view id, std::string_view token,
                     std::string_view error, std::string_view reason,
                     std::optional<Millis> retry_delay, Millis result_ttl);
FailOutcome parse_fail(const redis::Reply& reply);

ScriptCall release_call(const QueueKeys& keys, std::string_view id, std::string_view token,
                        Millis result_ttl);
// parse with parse_settle: done, refused or quarantined

// --- leases --------------------------------------------------------------------------------------
// quarantined: the record could not be a job: dead-lettered (stop the handler).
enum class RenewStatus { renewed, cancel_requested, lost, quarantined };
struct HeldJob {
    std::string_view id;
    std::string_view token;
};
ScriptCall renew_call(const QueueKeys& keys, Millis lease, std::span<const HeldJob> jobs);
std::vector<RenewStatus> parse_renew(const redis::Reply& reply);

// Jobs claimed ahead that handlers now have (one queue): each attempt is counted, `started` set
// and the mark cleared; a job no longer held, or not marked, is left as it is. The reply (one
// 1/0 per job) needs no reading: the call is fire-and-forget.
ScriptCall start_call(const QueueKeys& keys, std::span<const HeldJob> jobs);

// Takes back up to `limit` jobs whose own lease lapsed (never earlier, whatever the registry
// says of their worker), and promotes due scheduled jobs.
ScriptCall reap_call(const QueueKeys& keys, std::size_t limit, Millis result_ttl);
struct ReapStep {
    long long taken_back = 0;
    bool more = false;  // the limit was reached: lapsed leases may remain, call again at once
};
ReapStep parse_reap(const redis::Reply& reply);
long long parse_count(const redis::Reply& reply);

// --- live jobs: cancel, purge, pause -------------------------------------------------------------
enum class CancelStatus { cancelled, flagged, finished, unknown };
struct CancelResult {
    CancelStatus status;
    JobState state;
};
ScriptCall cancel_call(const QueueKeys& keys, Millis result_ttl, std::span<const std::string> ids);
std::vector<CancelResult> parse_cancel(const redis::Reply& reply);

enum class PurgeWhich { waiting, scheduled, both };
struct PurgeStep {
    long long cancelled = 0;
    bool more = false;
};
ScriptCall purge_call(const QueueKeys& keys, PurgeWhich which, std::size_t batch,
                      Millis result_ttl);
PurgeStep parse_purge(const redis::Reply& reply);

ScriptCall set_paused_call(const QueueKeys& keys, bool paused);

// --- limits (workq-queue limit) ------------------------------------------------------------------
// A queue's fleet-wide limits, enforced by claim on the server's clock: at most `rate` starts
// in any window of `window`, at most `concurrency` jobs running. 0: no such limit.
struct QueueLimits {
    long long rate = 0;
    Millis window{0};
    long long concurrency = 0;
};
constexpr long long max_rate_limit = 100'000;  // starts kept in the log: one zset entry each
constexpr long long max_concurrency_limit = 1'000'000;
// "20/1s" for 20 starts per 1 s; "0" for none. Throws UsageError naming `what` for anything
// else: N must be 0..max_rate_limit, DURATION a duration of at least 1ms.
struct RateLimit {
    long long rate = 0;  // 0: none
    Millis window{0};
};
RateLimit parse_rate_limit(std::string_view text, std::string_view what);
std::string format_rate_limit(long long rate, Millis window);  // "20/1s"; "" for none
// nullopt: leave that limit as it is; a rate or concurrency of 0 clears it.
ScriptCall set_limits_call(const QueueKeys& keys, std::optional<RateLimit> rate,
                           std::optional<long long> concurrency);
QueueLimits parse_limits(const redis::Reply& reply);
// The reply of HMGET <p>meta limit_rate limit_window limit_concurrency (reading them).
QueueLimits parse_limits_fields(const redis::Reply& reply);

// --- removing a queue (workq-queue rm) -----------------------------------------------------------
// What a queue still holds; `removed` when queue_remove removed it (then the counts are zero,
// except running jobs that RunningJobs::allowed let stay: they were told to stop).
struct QueueRemoval {
    bool removed = false;
    long long waiting = 0, scheduled = 0, running = 0, dead = 0, schedules = 0;
};
enum class RunningJobs { refuse, allowed };
ScriptCall queue_remove_call(const QueueKeys& keys, RunningJobs running);
QueueRemoval parse_queue_remove(const redis::Reply& reply);

// Asks that the end of each existing job be pushed to its done list (see enqueue --wait).
ScriptCall notify_call(const QueueKeys& keys, std::span<const std::string> ids);

// --- dead letters --------------------------------------------------------------------------------
struct IdOutcome {
    std::string id;
    bool ok = false;  // requeued / deleted; false: not a dead letter of this queue
};
// ids empty: the `oldest` oldest dead letters (requeue: after the `skip` oldest).
ScriptCall dead_requeue_call(const QueueKeys& keys, std::span<const std::string> ids,
                             std::size_t oldest = 0, std::size_t skip = 0);
ScriptCall dead_delete_call(const QueueKeys& keys, std::span<const std::string> ids,
                            std::size_t oldest = 0);
std::vector<IdOutcome> parse_id_outcomes(const redis::Reply& reply);  // of dead_delete_call
enum class RequeueStatus {
    not_dead,  // not a dead letter of this queue
    requeued,
    corrupt,      // kept dead: its record has nothing to run
    unique_held,  // kept dead: another live job (`holder`) holds its --unique key
};
struct RequeueOutcome : IdOutcome {
    RequeueStatus status = RequeueStatus::not_dead;
    std::string holder;
};
// The reply of dead_requeue_call.
std::vector<RequeueOutcome> parse_requeue_outcomes(const redis::Reply& reply);
ScriptCall dead_cap_call(const QueueKeys& keys, long long max_count, Millis max_age);

// --- reading -------------------------------------------------------------------------------------
struct QueueStats {
    long long waiting = 0, scheduled = 0, running = 0, dead = 0;
    long long succeeded = 0, failed = 0;
    bool paused = false;
    std::optional<Millis> oldest_waiting_age;
    long long trimmed = 0;
    long long data_version = 0;
    long long succeeded_last_minute = 0;  // recent throughput: successes in the last 60 s
    long long overdue = 0;                // running jobs whose lease lapsed, not yet taken back
    long long claimed_ahead = 0;  // leased by --claim-ahead, no handler yet (not in running)
    long long schedules = 0;      // workq-schedule's schedules of the queue
    std::optional<long long> next_tick_ms;  // the earliest tick of an unpaused schedule
    long long late_schedules = 0;           // schedules whose tick is late (no worker fires them)
    QueueLimits limits;                     // workq-queue limit
};
// A schedule's tick due for longer than this is late: no worker serves its queue (they fire
// within 2 s), or all are cut off. workq-status warns; workq-schedule ls marks it.
constexpr Millis schedule_late_after{10000};
ScriptCall stats_call(const QueueKeys& keys);
QueueStats parse_stats(const redis::Reply& reply);

struct AttemptError {
    long long at_ms = 0;
    long long attempt = 0;
    std::string reason;
    std::string error;
};
struct JobInfo {
    std::string id;
    std::string queue;
    JobState state = JobState::unknown;
    long long attempts = 0, max_attempts = 0;
    std::optional<long long> created_ms, ready_ms, started_ms, finished_ms, lease_ms, due_ms,
        died_ms;
    std::string worker;
    long long priority = 0;
    std::optional<Millis> timeout;
    std::string unique_key;
    std::optional<std::string> result;
    long long result_truncated = 0;  // bytes dropped beyond the result bound
    std::string error, reason;
    bool cancel_requested = false;
    std::optional<std::string> payload;  // with details
    std::vector<AttemptError> errors;    // with details
    long long server_now_ms = 0;
    // What cannot be read as workq wrote it, in words: the record is not a hash (then nothing
    // else is known), a field holds what workq never writes, the error list is not a list.
    std::string damage;
};
struct JobRow {
    long long priority = 0, attempts = 0, max_attempts = 0, payload_bytes = 0;
    std::optional<long long> created_ms, lease_ms;
    std::string worker, preview;
    bool exists = false;
    bool claimed_ahead = false;  // running, claimed ahead (--claim-ahead): no handler has it yet
};
// The fields listings show for many jobs of one queue: one call per page.
ScriptCall job_rows_call(const QueueKeys& keys, std::span<const std::string> ids,
                         std::size_t preview_bytes);
std::vector<JobRow> parse_job_rows(const redis::Reply& reply);

ScriptCall job_info_call(const QueueKeys& keys, std::string_view id, bool details);
// nullopt when the queue has no such job.
std::optional<JobInfo> parse_job_info(const redis::Reply& reply, std::string_view id,
                                      std::string_view queue);

}  // namespace workq::queue
