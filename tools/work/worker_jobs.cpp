// A job's run: the slot it takes, the handler it starts (per job or persistent), what the run
// came to, and the outcome handed to the settler.
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

#include "queue/backoff.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/faults.hpp"
#include "util/hardening.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/time.hpp"
#include "worker.hpp"
#include "worker_internal.hpp"

namespace workq::work {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace detail;

namespace {

// Bytes of the longest single argument exec accepts, plus one: Linux's MAX_ARG_STRLEN (32
// pages) counts the terminating NUL.
std::size_t max_argument_bytes() {
    static const std::size_t bytes = 32 * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return bytes;
}

}  // namespace

double detail::unit_random() {
    static std::mt19937_64 engine{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
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
    settle(job,
           queue::fail_call(keys, job.claimed.id, job.claimed.token, error, reason, std::nullopt,
                            settings_.result_ttl),
           [this, id = job.claimed.id, queue_index = job.queue_index, error](const redis::Reply&) {
               ++jobs_dead_;
               metrics_.count(queue_index, Outcome::dead);
               log::error("job dead: " + error, {{"job", id}});
           });
}

void Worker::log_claimed(const Job& job) const {
    // A line per job only at debug (issue 16): the summary line says what a worker did at info.
    if (!log::enabled(log::Level::debug)) return;
    log::debug("job claimed",
               {{"worker", worker_label()},
                {"queue", settings_.queues[job.queue_index]},
                {"job", job.claimed.id},
                {"attempt", fmt::format("{}/{}", job.claimed.attempt, job.claimed.max_attempts)}});
}

void Worker::start_job(Slot& slot, Job job) {
    if (job.claimed.ahead) {
        // Claimed ahead: its attempt is counted when the server has the start notice (sent
        // once per turn of the loop, batched per queue, retried after a reconnect). Killed
        // before it arrives, the run is not counted (README, "Crash windows").
        job.claimed.ahead = false;
        starts_owed_[job.queue_index].emplace_back(job.claimed.id, job.claimed.token);
        if (!starts_flush_posted_) {
            starts_flush_posted_ = true;
            asio::post(io_, [this] { flush_starts(); });
        }
    }
    if (slot.persistent) {
        ++jobs_started_;
        log_claimed(job);
        slot.job = std::move(job);
        const auto& held = *slot.job;
        // Views of the job the slot holds: the request line is written at once.
        queue::HandlerRequest request{held.claimed.id, settings_.queues[held.queue_index],
                                      held.claimed.payload, held.claimed.attempt};
        auto timeout = held.claimed.timeout.value_or(settings_.timeout);
        slot.persistent->run_job(request, timeout,
                                 [this, index = slot.index](PersistentOutcome outcome) {
                                     on_persistent_done(index, std::move(outcome));
                                 });
        return;
    }
    ++jobs_started_;
    log_claimed(job);
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
    params.guard_fd = children_.guard_fd();
    params.cgroup_fd = children_.cgroup_fd();
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
        children_.watch(slot.run->pid(), [run = slot.run](int status) { run->on_exit(status); });
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
        release(held);
        slot.job.reset();
        --jobs_started_;
        pause_claims_for_shortage();
    }
}

void Worker::start_held_jobs() {
    // Short of pipes or processes (pause_claims_for_shortage): they wait, leased, for the pause.
    // Not while the connection is down: a lease may have lapsed meanwhile (the reaper gave the
    // job to another worker); after the reconnect the renewals say which jobs are still ours.
    while (state_ == State::running && !short_of_resources_ && claim_ahead_.held() > 0 &&
           free_slots() > slots_claimed_for_ && commands_ && commands_->ready()) {
        Slot* free_slot = nullptr;
        for (std::size_t i = 0;
             i < slots_.size() && i < static_cast<std::size_t>(settings_.concurrency); ++i)
            if (slot_ready(slots_[i])) {
                free_slot = &slots_[i];
                break;
            }
        if (!free_slot) return;
        auto claimed = claim_ahead_.next();
        Job job;
        job.queue_index = claimed->queue_index;
        job.claimed = std::move(*claimed);
        job.claimed_at = std::chrono::steady_clock::now();
        start_job(*free_slot, std::move(job));
    }
}

void Worker::give_back_held(std::string_view why) {
    auto jobs = claim_ahead_.give_back_all();
    if (jobs.empty()) return;
    log::info(fmt::format("{}: giving back {} job(s) claimed ahead (attempts not counted)", why,
                          jobs.size()),
              {{"worker", worker_label()}});
    for (auto& claimed : jobs) {
        Job job;
        job.queue_index = claimed.queue_index;
        job.claimed = std::move(claimed);
        release(job);
    }
}

void Worker::flush_starts() {
    starts_flush_posted_ = false;
    // The crash window of claiming ahead: the handler has the job, the server does not know.
    crash_point("before-start-notice");
    for (std::size_t q = 0; q < starts_owed_.size(); ++q) {
        auto owed = std::exchange(starts_owed_[q], {});
        for (std::size_t from = 0; from < owed.size(); from += Settler::batch_most_jobs) {
            std::vector<queue::HeldJob> held;
            for (std::size_t i = from; i < owed.size() && i < from + Settler::batch_most_jobs; ++i)
                held.push_back({owed[i].first, owed[i].second});
            // Fire-and-forget: the reply changes nothing here; the settler sends it again after
            // a reconnect (a repeat changes nothing on the server).
            settler_->settle({queue::start_call(queue_keys_[q], held), [](const redis::Reply&) {}});
        }
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
    params.guard_fd = children_.guard_fd();
    params.cgroup_fd = children_.cgroup_fd();
    params.recycle_jobs = settings_.recycle_jobs;
    params.recycle_errors = settings_.recycle_errors;
    params.recycle_age = settings_.recycle_age;
    auto index = slot.index;
    slot.persistent = PersistentHandler::start(
        io_, std::move(params),
        [this, index](pid_t pid) {
            children_.watch(pid, [this, index](int status) {
                if (auto handler = slots_[index].persistent) handler->on_exit(status);
            });
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
            result.dropped = cut_to(result.result, settings_.max_result);
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
    // Captured by the replies' handlers, cheaply: the queue names never change while running,
    // and the duration is formatted only for a line that is written.
    std::string_view queue = settings_.queues[job.queue_index];
    auto duration = run.duration;
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
        release(job);
        fatal(fmt::format("cannot execute COMMAND '{}': {}; job {} released, attempt not counted",
                          printable(settings_.command.front()), std::strerror(run.exec_error), id));
    } else if (job.lease_lost) {
        metrics_.count(queue_index, Outcome::lost);
        log::warn(
            "lease lost: another worker holds the job or it was settled; its outcome is dropped",
            {{"worker", worker_label()},
             {"queue", std::string(queue)},
             {"job", id},
             {"outcome", run.describe}});
    } else if (run.kind == RunResult::Kind::released) {
        release(job, [this, id, queue, queue_index](const redis::Reply& reply) {
            if (queue::parse_settle(reply) != queue::Settle::done) return;
            ++jobs_released_;
            metrics_.count(queue_index, Outcome::released);
            log::info("job released (attempt not counted)",
                      {{"worker", worker_label()}, {"queue", std::string(queue)}, {"job", id}});
        });
    } else if (run.kind == RunResult::Kind::succeeded) {
        if (run.result.size() > bulk_limit_ - Settler::request_room) {
            auto kept = bulk_limit_ - Settler::request_room;
            log::warn(fmt::format("result of {} bytes cut at {}: the server takes no longer "
                                  "argument (its proto-max-bulk-len)",
                                  run.result.size(), kept),
                      {{"worker", worker_label()}, {"queue", std::string(queue)}, {"job", id}});
            run.dropped += run.result.size() - kept;
            run.result.resize(kept);
        } else if (run.dropped > 0)
            log::warn(fmt::format("result cut at {} bytes ({} more dropped; see --max-result)",
                                  run.result.size(), run.dropped),
                      {{"job", id}});
        // Offered to the claim that the freed slot sends below (maybe_claim): one round trip
        // settles it and brings the next job. No claim going, it leaves alone at the end of
        // this turn of the event loop.
        settler_->succeed(
            job.queue_index,
            {id, job.claimed.token, std::move(run.result), run.dropped,
             [this, id, queue, queue_index, duration,
              attempt = job.claimed.attempt](queue::Settle settled) {
                 if (settled == queue::Settle::refused) {
                     metrics_.count(queue_index, Outcome::lost);
                     log::warn(
                         "lease lost: the success was not recorded (another worker holds the job)",
                         {{"worker", worker_label()}, {"queue", std::string(queue)}, {"job", id}});
                     return;
                 }
                 if (settled == queue::Settle::quarantined) {
                     log::error(
                         "the job's record is corrupt: dead-lettered with its result kept "
                         "(see workq-dlq show)",
                         {{"worker", worker_label()}, {"queue", std::string(queue)}, {"job", id}});
                     return;
                 }
                 ++jobs_succeeded_;
                 metrics_.count(queue_index, Outcome::succeeded);
                 if (!log::enabled(log::Level::debug)) return;
                 log::debug("job succeeded", {{"worker", worker_label()},
                                              {"queue", std::string(queue)},
                                              {"job", id},
                                              {"attempt", std::to_string(attempt)},
                                              {"duration", format_duration_short(duration)}});
             }},
            true);
    } else {
        bool cancelled = job.cancel_requested || run.cancelled;
        bool permanent = run.permanent;
        std::optional<Millis> delay;
        if (!permanent)
            delay = queue::retry_delay(settings_.backoff, job.claimed.attempt, unit_random());
        auto reason = cancelled ? std::string("cancelled") : run.reason;
        auto error_text = run.error.empty() ? reason : run.error;
        settle(
            job,
            queue::fail_call(keys, id, job.claimed.token, error_text, reason, delay,
                             settings_.result_ttl),
            [this, id, queue, queue_index, reason, duration, delay, attempt = job.claimed.attempt,
             max = job.claimed.max_attempts](const redis::Reply& reply) {
                auto result = queue::parse_fail(reply);
                if (result.settle == queue::Settle::refused) {
                    metrics_.count(queue_index, Outcome::lost);
                    log::warn(
                        "lease lost: the failure was not recorded (another worker holds the job)",
                        {{"worker", worker_label()}, {"queue", std::string(queue)}, {"job", id}});
                    return;
                }
                if (result.settle == queue::Settle::duplicate) return;
                if (result.settle == queue::Settle::quarantined) {
                    log::error(
                        "the job's record is corrupt: dead-lettered with this attempt's "
                        "reason (see workq-dlq show)",
                        {{"worker", worker_label()},
                         {"queue", std::string(queue)},
                         {"job", id},
                         {"reason", reason}});
                    return;
                }
                switch (result.state) {
                    case queue::JobState::scheduled:
                        log::warn("job failed; will retry",
                                  {{"worker", worker_label()},
                                   {"queue", std::string(queue)},
                                   {"job", id},
                                   {"attempt", fmt::format("{}/{}", attempt, max)},
                                   {"reason", reason},
                                   {"duration", format_duration_short(duration)},
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
                                                {"queue", std::string(queue)},
                                                {"job", id},
                                                {"attempt", fmt::format("{}/{}", attempt, max)},
                                                {"reason", reason},
                                                {"duration", format_duration_short(duration)}});
                        break;
                    case queue::JobState::cancelled:
                        metrics_.count(queue_index, Outcome::cancelled);
                        log::info("job cancelled", {{"worker", worker_label()},
                                                    {"queue", std::string(queue)},
                                                    {"job", id}});
                        break;
                    default:
                        break;
                }
            });
    }
    if (settings_.max_jobs > 0 && jobs_finished_ >= settings_.max_jobs)
        begin_drain("--max-jobs reached");
    maybe_claim();
    check_drained();
}

void Worker::settle(const Job& job, queue::ScriptCall call,
                    std::function<void(const redis::Reply&)> on_reply) {
    settler_->settle({std::move(call),
                      std::move(on_reply),
                      {},
                      {{job.queue_index, job.claimed.id, job.claimed.token}}});
}

void Worker::release(const Job& job, std::function<void(const redis::Reply&)> on_reply) {
    if (!on_reply) on_reply = [](const redis::Reply&) {};
    settle(job,
           queue::release_call(queue_keys_[job.queue_index], job.claimed.id, job.claimed.token,
                               settings_.result_ttl),
           std::move(on_reply));
}

void Worker::settler_answered() {
    // A --burst ends only when no settle is in flight. A claim that found nothing may have
    // come back before this settle (its first EVALSHA meets NOSCRIPT and goes again as EVAL):
    // look once more, or the burst never ends.
    if (settings_.burst && settler_->in_flight() == 0) maybe_claim();
    check_drained();
}

void Worker::on_lease_news(const Leases::Held& held, queue::RenewStatus status) {
    // A job claimed ahead, not started: lost or quarantined, it is dropped; cancelled, it is
    // given back, which ends it cancelled without running it.
    if (status != queue::RenewStatus::renewed) {
        if (auto claimed = claim_ahead_.take(held.id, held.token)) {
            Job job;
            job.queue_index = claimed->queue_index;
            job.claimed = std::move(*claimed);
            if (status == queue::RenewStatus::cancel_requested) {
                log::info("job cancelled by a user before it started (claimed ahead)",
                          {{"worker", worker_label()}, {"job", job.claimed.id}});
                release(job);
            } else {
                log::warn("lease lost of a job claimed ahead, not started: dropped",
                          {{"worker", worker_label()}, {"job", job.claimed.id}});
            }
            maybe_claim();
            return;
        }
    }
    for (auto& slot : slots_) {
        if (!slot.job || slot.job->claimed.id != held.id || slot.job->claimed.token != held.token)
            continue;
        if (status == queue::RenewStatus::quarantined) {
            slot.job->lease_lost = true;
            log::error(
                "the job's record is corrupt: dead-lettered (see workq-dlq show); stopping its "
                "handler",
                {{"worker", worker_label()}, {"job", slot.job->claimed.id}});
            stop_slot(slot, StopReason::lease_lost);
        } else if (status == queue::RenewStatus::lost) {
            slot.job->lease_lost = true;
            log::warn("lease lost: another worker holds the job; stopping its handler",
                      {{"worker", worker_label()}, {"job", slot.job->claimed.id}});
            stop_slot(slot, StopReason::lease_lost);
        } else if (status == queue::RenewStatus::cancel_requested && !slot.job->cancel_requested) {
            slot.job->cancel_requested = true;
            log::info("job cancelled by a user; stopping its handler",
                      {{"worker", worker_label()}, {"job", slot.job->claimed.id}});
            stop_slot(slot, StopReason::cancelled);
        }
    }
}

}  // namespace workq::work
