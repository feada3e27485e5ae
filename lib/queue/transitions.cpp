#include "queue/transitions.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <charconv>

#include "queue/scripts.hpp"
#include "util/duration.hpp"
#include "util/names.hpp"
#include "util/text.hpp"

namespace workq::queue {
namespace {

std::string ms(Millis value) {
    return std::to_string(value.count());
}

ScriptCall make_call(std::string_view script_name, const QueueKeys& keys) {
    ScriptCall call;
    call.script = &script(script_name);
    call.keys.push_back(keys.meta());
    call.args.push_back(keys.prefix());
    return call;
}

std::vector<IdOutcome> id_outcomes(const redis::Reply& reply) {
    std::vector<IdOutcome> out;
    const auto& items = reply.as_array();
    for (std::size_t i = 0; i + 1 < items.size(); i += 2)
        out.push_back({items[i].as_string(), items[i + 1].as_integer() == 1});
    return out;
}

std::optional<long long> optional_number(const std::string& text) {
    if (text.empty()) return std::nullopt;
    try {
        return std::stoll(text);
    } catch (...) {
        return std::nullopt;
    }
}

}  // namespace

QueueDamagedError::QueueDamagedError(std::string damaged_key, std::string description)
    : Error(fmt::format("{} is damaged: {}; nothing was changed (see README, \"Damaged data\")",
                        queue_of_key(damaged_key).empty() ? std::string("the namespace's registry")
                                                          : "queue " + queue_of_key(damaged_key),
                        printable(description, 300))),
      key(std::move(damaged_key)),
      damage(std::move(description)) {}

std::string queue_of_key(std::string_view key) {
    // "{NS:QUEUE}:..." -> QUEUE; "{NS}:..." -> "".
    if (!key.starts_with('{')) return {};
    auto close = key.find('}');
    auto colon = key.find(':');
    if (close == std::string_view::npos || colon == std::string_view::npos || colon > close)
        return {};
    return std::string(key.substr(colon + 1, close - colon - 1));
}

const redis::Reply& expect_type(const redis::Reply& reply, std::string_view key,
                                std::string_view kind) {
    if (!reply.is_error()) return reply;
    if (reply.text.starts_with("WRONGTYPE"))
        throw QueueDamagedError(
            std::string(key),
            fmt::format("{} holds another type where workq keeps a {}", key, kind));
    throw RedisError(fmt::format("reading {}: {}", key, printable(reply.text, 300)));
}

void check_reply(const ScriptCall& call, const redis::Reply& reply) {
    if (!reply.is_error()) return;
    if (reply.text.starts_with("WORKQ_DAMAGED ")) {
        // "WORKQ_DAMAGED <key> holds ..." and Redis's " script: <sha>, on @user_script:N."
        auto what = std::string_view(reply.text).substr(14);
        if (auto at = what.find(" script: "); at != std::string_view::npos)
            what = what.substr(0, at);
        auto key = what.substr(0, what.find(' '));
        throw QueueDamagedError(std::string(key), std::string(what));
    }
    if (reply.text.starts_with("WORKQ_VERSION")) {
        std::string found = "?", known = "?";
        auto rest = std::string_view(reply.text).substr(14);
        auto space = rest.find(' ');
        found = std::string(rest.substr(0, space));
        // Redis appends where the error came from ("script: <sha>, on @user_script:31."):
        // the number alone is ours.
        if (space != std::string_view::npos) {
            auto tail = rest.substr(space + 1);
            known = std::string(tail.substr(0, tail.find_first_not_of("0123456789")));
        }
        throw DataVersionError(fmt::format(
            "refusing to touch this queue: its data was written by a newer workq (data model {}; "
            "this workq knows {}); upgrade workq",
            found, known));
    }
    if (reply.text.starts_with("TRYAGAIN") || reply.text.starts_with("ASK ")) {
        // A cluster slot in migration (README, "Running on a Redis Cluster"): the script ran
        // nowhere, or ended before its first read; the router waited as long as it may.
        throw RedisError(fmt::format(
            "script {}: its slot is moving between cluster nodes and still was after the "
            "retries; this call changed nothing and can be sent again ({})",
            call.script ? call.script->name : "?", printable(reply.text, 200)));
    }
    throw RedisError(fmt::format("the server refused script {}: {}",
                                 call.script ? call.script->name : "?",
                                 printable(reply.text, 300)));
}

std::string_view to_string(JobState state) {
    switch (state) {
        case JobState::scheduled:
            return "scheduled";
        case JobState::waiting:
            return "waiting";
        case JobState::running:
            return "running";
        case JobState::succeeded:
            return "succeeded";
        case JobState::dead:
            return "dead";
        case JobState::cancelled:
            return "cancelled";
        case JobState::unknown:
            return "unknown";
    }
    return "unknown";
}

JobState parse_job_state(std::string_view text) {
    for (auto state : {JobState::scheduled, JobState::waiting, JobState::running,
                       JobState::succeeded, JobState::dead, JobState::cancelled})
        if (to_string(state) == text) return state;
    return JobState::unknown;
}

ScriptCall enqueue_call(const QueueKeys& keys, const EnqueueOptions& options,
                        std::span<const NewJob> jobs) {
    auto call = make_call("enqueue", keys);
    auto& a = call.args;
    a.reserve(10 + 2 * jobs.size());
    a.push_back(std::to_string(options.priority));
    a.push_back(std::to_string(options.max_attempts));
    a.push_back(options.timeout ? ms(*options.timeout) : "");
    a.push_back(ms(options.delay));
    a.push_back(options.due_at_ms ? std::to_string(*options.due_at_ms) : "");
    a.push_back(options.unique_key);
    a.push_back(options.caller_ids ? "caller" : "generated");
    a.push_back(options.notify ? "1" : "0");
    a.push_back(options.id_fence_ms ? std::to_string(*options.id_fence_ms) : "");
    for (const auto& job : jobs) {
        a.emplace_back(job.id);
        a.emplace_back(job.payload);
    }
    return call;
}

std::vector<EnqueueResult> parse_enqueue(const redis::Reply& reply, std::span<const NewJob> jobs) {
    const auto& items = reply.as_array();
    if (items.empty() || items[0].as_integer() != static_cast<long long>(jobs.size()))
        throw RedisError(fmt::format("the enqueue script answered for {} job(s) where {} were sent",
                                     items.empty() ? 0 : items[0].as_integer(), jobs.size()));
    // Every job is created but those the reply names.
    std::vector<EnqueueResult> out;
    out.reserve(jobs.size());
    for (const auto& job : jobs)
        out.push_back({EnqueueStatus::created, std::string(job.id)});
    for (std::size_t i = 1; i + 2 < items.size(); i += 3) {
        auto index = items[i].as_integer();
        if (index < 1 || index > static_cast<long long>(jobs.size()))
            throw RedisError(
                fmt::format("the enqueue script named job {} of {}", index, jobs.size()));
        auto status = items[i + 1].as_integer();
        out[static_cast<std::size_t>(index - 1)] = {status == 0 ? EnqueueStatus::existing
                                                    : status == -2
                                                        ? EnqueueStatus::reservation_lapsed
                                                        : EnqueueStatus::collision,
                                                    items[i + 2].as_string()};
    }
    return out;
}

namespace {
ScriptCall id_call(const NamespaceKeys& keys, std::span<const std::string> ids,
                   std::string_view queue, std::string_view mode) {
    ScriptCall call;
    call.script = &script("reserve_id");
    for (const auto& id : ids)
        call.keys.push_back(keys.id(id));
    call.args = {std::string(queue), std::string(mode)};
    return call;
}
}  // namespace

ScriptCall reserve_id_call(const NamespaceKeys& keys, std::span<const std::string> ids,
                           std::string_view queue) {
    return id_call(keys, ids, queue, "reserve");
}

ScriptCall release_id_call(const NamespaceKeys& keys, std::span<const std::string> ids,
                           std::string_view queue) {
    return id_call(keys, ids, queue, "release");
}

std::vector<IdReservation> parse_reserve_id(const redis::Reply& reply) {
    std::vector<IdReservation> out;
    for (const auto& item : reply.as_array()) {
        IdReservation reservation;
        reservation.held = item.at(0).as_integer() == 1;
        if (reservation.held) {
            reservation.deadline_ms = item.at(1).as_integer();
        } else {
            reservation.holder = item.at(1).as_string();
            reservation.holder_left_ms = item.at(2).as_integer();
        }
        out.push_back(std::move(reservation));
    }
    return out;
}

ScriptCall claim_call(std::span<const QueueKeys> queues, std::string_view worker_id,
                      std::string_view token_base, Millis lease, std::size_t max_jobs,
                      std::size_t ahead, std::span<const ClaimSuccess> successes,
                      Millis result_ttl) {
    ScriptCall call;
    call.script = &script("claim");
    call.keys.reserve(queues.size());
    for (const auto& keys : queues)
        call.keys.push_back(keys.meta());
    // ARGV[5] the jobs claimed ahead (--claim-ahead); ARGV[6] result TTL and ARGV[7] k, the
    // successes the round settles first (README, "One round"), after the prefixes.
    call.args = {std::string(worker_id),
                 std::string(token_base),
                 ms(lease),
                 std::to_string(max_jobs),
                 std::to_string(std::min(ahead, max_jobs)),
                 ms(result_ttl),
                 std::to_string(successes.size())};
    for (const auto& keys : queues)
        call.args.push_back(keys.prefix());
    for (const auto& success : successes)
        call.args.insert(call.args.end(),
                         {std::to_string(success.queue_index + 1), std::string(success.job.id),
                          std::string(success.job.token), std::string(success.job.result),
                          std::to_string(success.job.dropped)});
    return call;
}

ClaimResult parse_claim(const redis::Reply& reply) {
    ClaimResult result;
    const auto& items = reply.as_array();
    if (items.empty()) return result;
    auto next_due = items[0].as_integer();
    if (next_due >= 0) result.next_due = Millis(next_due);
    if (items.size() < 2) throw RedisError("claim: a reply without its tick hint");
    auto next_tick = items[1].as_integer();
    if (next_tick >= 0) result.next_tick = Millis(next_tick);
    if (items.size() < 3 || !items[2].is_array()) throw RedisError("claim: a reply without holds");
    for (const auto& hold : items[2].as_array()) {
        auto value = hold.as_integer();
        if (value >= 0)
            result.holds.push_back({HoldKind::rate, Millis(value)});
        else if (value == -2)
            result.holds.push_back({HoldKind::concurrency, Millis(0)});
        else
            result.holds.push_back({});
    }
    if (items.size() < 4 || !items[3].is_array())
        throw RedisError("claim: a reply without its damaged queues");
    const auto& damaged = items[3].as_array();
    for (std::size_t i = 0; i + 1 < damaged.size(); i += 2)
        result.damaged.push_back(
            {static_cast<std::size_t>(damaged[i].as_integer() - 1), damaged[i + 1].as_string()});
    if (items.size() < 5 || !items[4].is_array())
        throw RedisError("claim: a reply without the statuses of its successes");
    for (const auto& status : items[4].as_array())
        result.settled.push_back(parse_settle(status));
    for (std::size_t i = 5; i < items.size(); ++i) {
        const auto& job = items[i];
        ClaimedJob claimed;
        claimed.queue_index = static_cast<std::size_t>(job.at(0).as_integer() - 1);
        claimed.id = job.at(1).as_string();
        claimed.payload = job.at(2).as_string();
        claimed.attempt = job.at(3).as_integer();
        claimed.max_attempts = job.at(4).as_integer();
        if (auto timeout = optional_number(job.at(5).as_string()))
            claimed.timeout = Millis(*timeout);
        claimed.token = job.at(6).as_string();
        claimed.ahead = job.as_array().size() > 7 && job.at(7).as_integer() == 1;
        result.jobs.push_back(std::move(claimed));
    }
    return result;
}

ScriptCall complete_call(const QueueKeys& keys, std::span<const Completion> jobs,
                         Millis result_ttl) {
    auto call = make_call("complete", keys);
    call.args.reserve(call.args.size() + 1 + 4 * jobs.size());
    call.args.push_back(ms(result_ttl));
    for (const auto& job : jobs)
        call.args.insert(call.args.end(), {std::string(job.id), std::string(job.token),
                                           std::string(job.result), std::to_string(job.dropped)});
    return call;
}

bool cut_results(ScriptCall& call, std::size_t budget) {
    if (!call.script || call.script->name != "complete" || call.args.size() < 6) return false;
    // args: prefix, result TTL, then id, token, result, dropped per job.
    std::size_t jobs = (call.args.size() - 2) / 4, total = 0, fixed = 0;
    for (const auto& key : call.keys)
        fixed += key.size();
    for (std::size_t i = 0; i < call.args.size(); ++i) {
        total += call.args[i].size();
        if (i < 2 || (i - 2) % 4 != 2) fixed += call.args[i].size();
    }
    if (total <= budget) return false;
    // The dropped counts grow by a few digits: room for them.
    constexpr std::size_t digits_room = 24;
    auto room = budget > fixed + digits_room * jobs ? budget - fixed - digits_room * jobs : 0;
    auto share = room / jobs;
    bool cut = false;
    for (std::size_t j = 0; j < jobs; ++j) {
        auto& result = call.args[2 + 4 * j + 2];
        if (result.size() <= share) continue;
        auto& dropped = call.args[2 + 4 * j + 3];
        dropped = std::to_string(optional_number(dropped).value_or(0) +
                                 static_cast<long long>(result.size() - share));
        result.resize(share);
        cut = true;
    }
    return cut;
}

std::vector<Settle> parse_complete(const redis::Reply& reply) {
    std::vector<Settle> out;
    for (const auto& item : reply.as_array())
        out.push_back(parse_settle(item));
    return out;
}

Settle parse_settle(const redis::Reply& reply) {
    auto status = reply.as_integer();
    return status == 1   ? Settle::done
           : status == 2 ? Settle::duplicate
           : status == 3 ? Settle::quarantined
                         : Settle::refused;
}

ScriptCall fail_call(const QueueKeys& keys, std::string_view id, std::string_view token,
                     std::string_view error, std::string_view reason,
                     std::optional<Millis> retry_delay, Millis result_ttl) {
    auto call = make_call("fail", keys);
    call.args.insert(
        call.args.end(),
        {std::string(id), std::string(token), std::string(tail_utf8(error, max_error_bytes)),
         std::string(reason), retry_delay ? ms(*retry_delay) : "-1", ms(result_ttl)});
    return call;
}

FailOutcome parse_fail(const redis::Reply& reply) {
    FailOutcome outcome;
    outcome.settle = parse_settle(reply.at(0));
    outcome.state = parse_job_state(reply.at(1).is_nil() ? "unknown" : reply.at(1).as_string());
    outcome.due_ms = reply.at(2).as_integer();
    return outcome;
}

ScriptCall release_call(const QueueKeys& keys, std::string_view id, std::string_view token,
                        Millis result_ttl) {
    auto call = make_call("release", keys);
    call.args.insert(call.args.end(), {std::string(id), std::string(token), ms(result_ttl)});
    return call;
}

ScriptCall renew_call(const QueueKeys& keys, Millis lease, std::span<const HeldJob> jobs) {
    auto call = make_call("renew", keys);
    call.args.push_back(ms(lease));
    for (const auto& job : jobs) {
        call.args.emplace_back(job.id);
        call.args.emplace_back(job.token);
    }
    return call;
}

ScriptCall start_call(const QueueKeys& keys, std::span<const HeldJob> jobs) {
    auto call = make_call("start", keys);
    for (const auto& job : jobs) {
        call.args.emplace_back(job.id);
        call.args.emplace_back(job.token);
    }
    return call;
}

std::vector<RenewStatus> parse_renew(const redis::Reply& reply) {
    std::vector<RenewStatus> out;
    for (const auto& item : reply.as_array()) {
        auto status = item.as_integer();
        out.push_back(status == 1   ? RenewStatus::renewed
                      : status == 2 ? RenewStatus::cancel_requested
                      : status == 3 ? RenewStatus::quarantined
                                    : RenewStatus::lost);
    }
    return out;
}

ScriptCall reap_call(const QueueKeys& keys, std::size_t limit, Millis result_ttl) {
    auto call = make_call("reap", keys);
    call.args.push_back(std::to_string(limit));
    call.args.push_back(ms(result_ttl));
    return call;
}

ReapStep parse_reap(const redis::Reply& reply) {
    return {reply.at(0).as_integer(), reply.at(1).as_integer() == 1};
}

long long parse_count(const redis::Reply& reply) {
    return reply.as_integer();
}

ScriptCall cancel_call(const QueueKeys& keys, Millis result_ttl, std::span<const std::string> ids) {
    auto call = make_call("cancel", keys);
    call.args.push_back(ms(result_ttl));
    for (const auto& id : ids)
        call.args.push_back(id);
    return call;
}

std::vector<CancelResult> parse_cancel(const redis::Reply& reply) {
    std::vector<CancelResult> out;
    for (const auto& item : reply.as_array()) {
        auto code = item.at(0).as_integer();
        auto state = parse_job_state(item.at(1).as_string());
        CancelStatus status = code == 1   ? CancelStatus::cancelled
                              : code == 2 ? CancelStatus::flagged
                              : code == 3 ? CancelStatus::finished
                                          : CancelStatus::unknown;
        out.push_back({status, state});
    }
    return out;
}

ScriptCall purge_call(const QueueKeys& keys, PurgeWhich which, std::size_t batch,
                      Millis result_ttl) {
    auto call = make_call("purge", keys);
    call.args.push_back(which == PurgeWhich::waiting     ? "waiting"
                        : which == PurgeWhich::scheduled ? "scheduled"
                                                         : "both");
    call.args.push_back(std::to_string(batch));
    call.args.push_back(ms(result_ttl));
    return call;
}

PurgeStep parse_purge(const redis::Reply& reply) {
    return {reply.at(0).as_integer(), reply.at(1).as_integer() == 1};
}

ScriptCall set_paused_call(const QueueKeys& keys, bool paused) {
    auto call = make_call("set_paused", keys);
    call.args.push_back(paused ? "1" : "0");
    return call;
}

RateLimit parse_rate_limit(std::string_view text, std::string_view what) {
    if (text == "0") return {};
    auto slash = text.find('/');
    auto bad = [&](std::string_view why) {
        return UsageError(
            fmt::format("{} '{}': {} (N/DURATION such as 10/1s or 600/1m; 0 removes "
                        "the limit)",
                        what, text, why));
    };
    if (slash == std::string_view::npos) throw bad("no /DURATION");
    auto count_text = text.substr(0, slash);
    long long count = 0;
    auto [end, error] =
        std::from_chars(count_text.data(), count_text.data() + count_text.size(), count);
    if (count_text.empty() || error != std::errc{} || end != count_text.data() + count_text.size())
        throw bad("N is not a whole number");
    if (count < 0 || count > max_rate_limit)
        throw bad(fmt::format("N must be 0 to {}", max_rate_limit));
    auto window = parse_duration(text.substr(slash + 1));
    if (!window) throw bad("DURATION is not a duration");
    if (*window < Millis(1)) throw bad("DURATION must be at least 1ms");
    if (count == 0) return {};
    return {count, *window};
}

std::string format_rate_limit(long long rate, Millis window) {
    if (rate <= 0 || window <= Millis(0)) return "";
    return fmt::format("{}/{}", rate, format_duration(window));
}

ScriptCall set_limits_call(const QueueKeys& keys, std::optional<RateLimit> rate,
                           std::optional<long long> concurrency) {
    auto call = make_call("set_limits", keys);
    call.args.push_back(rate ? std::to_string(rate->rate) : "");
    call.args.push_back(rate ? ms(rate->window) : "");
    call.args.push_back(concurrency ? std::to_string(*concurrency) : "");
    return call;
}

QueueLimits parse_limits(const redis::Reply& reply) {
    QueueLimits limits;
    limits.rate = reply.at(0).as_integer();
    limits.window = Millis(reply.at(1).as_integer());
    limits.concurrency = reply.at(2).as_integer();
    if (limits.rate <= 0 || limits.window <= Millis(0)) limits.rate = 0, limits.window = Millis(0);
    return limits;
}

QueueLimits parse_limits_fields(const redis::Reply& reply) {
    QueueLimits limits;
    auto number = [&](std::size_t i) -> long long {
        const auto& item = reply.at(i);
        if (item.is_nil()) return 0;
        return optional_number(item.as_string()).value_or(0);
    };
    limits.rate = number(0);
    limits.window = Millis(number(1));
    limits.concurrency = std::max(0LL, number(2));
    if (limits.rate <= 0 || limits.window <= Millis(0)) limits.rate = 0, limits.window = Millis(0);
    return limits;
}

ScriptCall queue_remove_call(const QueueKeys& keys, RunningJobs running) {
    auto call = make_call("queue_remove", keys);
    call.args.push_back(running == RunningJobs::allowed ? "1" : "0");
    return call;
}

QueueRemoval parse_queue_remove(const redis::Reply& reply) {
    QueueRemoval removal;
    removal.removed = reply.at(0).as_integer() == 1;
    removal.waiting = reply.at(1).as_integer();
    removal.scheduled = reply.at(2).as_integer();
    removal.running = reply.at(3).as_integer();
    removal.dead = reply.at(4).as_integer();
    removal.schedules = reply.at(5).as_integer();
    return removal;
}

ScriptCall notify_call(const QueueKeys& keys, std::span<const std::string> ids) {
    auto call = make_call("notify", keys);
    for (const auto& id : ids)
        call.args.push_back(id);
    return call;
}

namespace {
ScriptCall dead_call(std::string_view name, const QueueKeys& keys, std::span<const std::string> ids,
                     std::size_t oldest) {
    auto call = make_call(name, keys);
    if (ids.empty()) {
        call.args.push_back("*");
        call.args.push_back(std::to_string(oldest));
    } else {
        for (const auto& id : ids)
            call.args.push_back(id);
    }
    return call;
}
}  // namespace

ScriptCall dead_requeue_call(const QueueKeys& keys, std::span<const std::string> ids,
                             std::size_t oldest, std::size_t skip) {
    auto call = dead_call("dead_requeue", keys, ids, oldest);
    if (ids.empty()) call.args.push_back(std::to_string(skip));
    return call;
}
ScriptCall dead_delete_call(const QueueKeys& keys, std::span<const std::string> ids,
                            std::size_t oldest) {
    return dead_call("dead_delete", keys, ids, oldest);
}
std::vector<IdOutcome> parse_id_outcomes(const redis::Reply& reply) {
    return id_outcomes(reply);
}
std::vector<RequeueOutcome> parse_requeue_outcomes(const redis::Reply& reply) {
    std::vector<RequeueOutcome> out;
    const auto& items = reply.as_array();
    for (std::size_t i = 0; i + 2 < items.size(); i += 3) {
        RequeueOutcome outcome;
        outcome.id = items[i].as_string();
        switch (items[i + 1].as_integer()) {
            case 1:
                outcome.status = RequeueStatus::requeued;
                break;
            case 2:
                outcome.status = RequeueStatus::corrupt;
                break;
            case 3:
                outcome.status = RequeueStatus::unique_held;
                break;
            default:
                outcome.status = RequeueStatus::not_dead;
                break;
        }
        outcome.ok = outcome.status == RequeueStatus::requeued;
        outcome.holder = items[i + 2].as_string();
        out.push_back(std::move(outcome));
    }
    return out;
}

ScriptCall dead_cap_call(const QueueKeys& keys, long long max_count, Millis max_age) {
    auto call = make_call("dead_cap", keys);
    call.args.push_back(std::to_string(max_count));
    call.args.push_back(ms(max_age));
    return call;
}

ScriptCall stats_call(const QueueKeys& keys) {
    auto call = make_call("stats", keys);
    call.args.push_back(ms(schedule_late_after));
    return call;
}

QueueStats parse_stats(const redis::Reply& reply) {
    QueueStats stats;
    stats.waiting = reply.at(0).as_integer();
    stats.scheduled = reply.at(1).as_integer();
    stats.running = reply.at(2).as_integer();
    stats.dead = reply.at(3).as_integer();
    stats.succeeded = reply.at(4).as_integer();
    stats.failed = reply.at(5).as_integer();
    stats.paused = reply.at(6).as_integer() == 1;
    if (auto age = reply.at(7).as_integer(); age >= 0) stats.oldest_waiting_age = Millis(age);
    stats.trimmed = reply.at(8).as_integer();
    stats.data_version = reply.at(9).as_integer();
    if (reply.as_array().size() > 10) stats.succeeded_last_minute = reply.at(10).as_integer();
    if (reply.as_array().size() > 11) stats.overdue = reply.at(11).as_integer();
    if (reply.as_array().size() > 14) {
        stats.schedules = reply.at(12).as_integer();
        if (auto tick = reply.at(13).as_integer(); tick >= 0) stats.next_tick_ms = tick;
        stats.late_schedules = reply.at(14).as_integer();
    }
    if (reply.as_array().size() > 17) {
        stats.limits.rate = reply.at(15).as_integer();
        stats.limits.window = Millis(reply.at(16).as_integer());
        stats.limits.concurrency = reply.at(17).as_integer();
    }
    if (reply.as_array().size() > 18) stats.claimed_ahead = reply.at(18).as_integer();
    return stats;
}

ScriptCall job_rows_call(const QueueKeys& keys, std::span<const std::string> ids,
                         std::size_t preview_bytes) {
    auto call = make_call("job_rows", keys);
    call.args.push_back(std::to_string(preview_bytes));
    for (const auto& id : ids)
        call.args.push_back(id);
    return call;
}

std::vector<JobRow> parse_job_rows(const redis::Reply& reply) {
    std::vector<JobRow> rows;
    for (const auto& item : reply.as_array()) {
        JobRow row;
        const auto& f = item.as_array();
        if (f.size() >= 8) {
            auto text = [&](std::size_t i) {
                return f[i].is_nil() ? std::string() : f[i].as_string();
            };
            row.exists = true;
            row.priority = optional_number(text(0)).value_or(0);
            row.attempts = optional_number(text(1)).value_or(0);
            row.max_attempts = optional_number(text(2)).value_or(0);
            row.created_ms = optional_number(text(3));
            row.worker = text(4);
            row.lease_ms = optional_number(text(5));
            row.payload_bytes = f[6].as_integer();
            row.preview = text(7);
            row.claimed_ahead = f.size() > 8 && f[8].as_integer() == 1;
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

ScriptCall job_info_call(const QueueKeys& keys, std::string_view id, bool details) {
    auto call = make_call("job_info", keys);
    call.args.emplace_back(id);
    call.args.push_back(details ? "1" : "0");
    return call;
}

std::optional<JobInfo> parse_job_info(const redis::Reply& reply, std::string_view id,
                                      std::string_view queue) {
    const auto& items = reply.as_array();
    if (items.empty()) return std::nullopt;
    JobInfo info;
    info.id = id;
    info.queue = queue;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
        const auto& name = items[i].as_string();
        const auto& value = items[i + 1];
        if (name == "errors") {
            for (const auto& entry : value.as_array()) {
                AttemptError error;
                try {
                    auto json = boost::json::parse(entry.as_string()).as_object();
                    if (auto* v = json.if_contains("at")) error.at_ms = v->to_number<long long>();
                    if (auto* v = json.if_contains("attempt"))
                        error.attempt = v->to_number<long long>();
                    if (auto* v = json.if_contains("reason"); v && v->is_string())
                        error.reason = v->as_string().c_str();
                    if (auto* v = json.if_contains("error"); v && v->is_string())
                        error.error.assign(v->as_string().data(), v->as_string().size());
                } catch (const std::exception&) {
                    error.error = entry.as_string();  // kept as it is: never lose an error text
                }
                info.errors.push_back(std::move(error));
            }
            continue;
        }
        const std::string text = value.type == redis::Reply::Type::integer
                                     ? std::to_string(value.integer)
                                     : value.as_string();
        if (name == "state")
            info.state = parse_job_state(text);
        else if (name == "attempts")
            info.attempts = optional_number(text).value_or(0);
        else if (name == "max")
            info.max_attempts = optional_number(text).value_or(0);
        else if (name == "created")
            info.created_ms = optional_number(text);
        else if (name == "ready")
            info.ready_ms = optional_number(text);
        else if (name == "started")
            info.started_ms = optional_number(text);
        else if (name == "finished")
            info.finished_ms = optional_number(text);
        else if (name == "lease")
            info.lease_ms = optional_number(text);
        else if (name == "due")
            info.due_ms = optional_number(text);
        else if (name == "died")
            info.died_ms = optional_number(text);
        else if (name == "worker")
            info.worker = text;
        else if (name == "prio")
            info.priority = optional_number(text).value_or(0);
        else if (name == "timeout") {
            if (auto t = optional_number(text)) info.timeout = Millis(*t);
        } else if (name == "unique")
            info.unique_key = text;
        else if (name == "result")
            info.result = text;
        else if (name == "error")
            info.error = text;
        else if (name == "reason")
            info.reason = text;
        else if (name == "cancel")
            info.cancel_requested = text == "1";
        else if (name == "truncated")
            info.result_truncated = optional_number(text).value_or(0);
        else if (name == "payload")
            info.payload = text;
        else if (name == "now")
            info.server_now_ms = optional_number(text).value_or(0);
        else if (name == "damage")
            info.damage = text;
    }
    return info;
}

}  // namespace workq::queue
