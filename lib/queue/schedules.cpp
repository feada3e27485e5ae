#include "queue/schedules.hpp"

#include <fmt/format.h>

#include "queue/scripts.hpp"

namespace workq::queue {
namespace {

ScriptCall make_call(std::string_view script_name, const QueueKeys& keys) {
    ScriptCall call;
    call.script = &script(script_name);
    call.keys.push_back(keys.meta());
    call.args.push_back(keys.prefix());
    return call;
}

std::optional<long long> number(const std::string& text) {
    if (text.empty()) return std::nullopt;
    try {
        std::size_t used = 0;
        auto value = std::stoll(text, &used);
        if (used != text.size()) return std::nullopt;
        return value;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

std::string_view to_string(CatchUp catch_up) {
    return catch_up == CatchUp::none ? "none" : "latest";
}

std::optional<CatchUp> parse_catch_up(std::string_view text) {
    if (text == "latest") return CatchUp::latest;
    if (text == "none") return CatchUp::none;
    return std::nullopt;
}

std::string tick_job_id(std::string_view name, long long tick_ms) {
    return fmt::format("{}.{}", name, tick_ms / 1000);
}

ScriptCall schedule_define_call(const QueueKeys& keys, const ScheduleDefinition& definition,
                                long long first_tick_ms) {
    auto call = make_call("schedule_define", keys);
    call.args.insert(call.args.end(),
                     {definition.name, definition.cron, definition.tz,
                      std::string(to_string(definition.catch_up)),
                      std::to_string(definition.priority), std::to_string(definition.max_attempts),
                      definition.timeout ? std::to_string(definition.timeout->count()) : "",
                      definition.unique_key, definition.payload, std::to_string(first_tick_ms)});
    return call;
}

DefineResult parse_schedule_define(const redis::Reply& reply) {
    DefineResult result;
    result.created = reply.at(0).as_integer() == 1;
    result.next_ms = reply.at(1).as_integer();
    result.paused = reply.at(2).as_integer() == 1;
    return result;
}

ScriptCall schedule_remove_call(const QueueKeys& keys, std::string_view name) {
    auto call = make_call("schedule_remove", keys);
    call.args.emplace_back(name);
    return call;
}

ScriptCall schedule_set_paused_call(const QueueKeys& keys, std::string_view name, bool paused,
                                    long long first_tick_ms) {
    auto call = make_call("schedule_set_paused", keys);
    call.args.emplace_back(name);
    call.args.emplace_back(paused ? "1" : "0");
    call.args.push_back(std::to_string(first_tick_ms));
    return call;
}

PauseOutcome parse_schedule_set_paused(const redis::Reply& reply) {
    switch (reply.as_integer()) {
        case 1:
            return PauseOutcome::changed;
        case 0:
            return PauseOutcome::unchanged;
        default:
            return PauseOutcome::unknown;
    }
}

ScriptCall schedule_rows_call(const QueueKeys& keys, std::string_view name) {
    auto call = make_call("schedule_rows", keys);
    call.args.emplace_back(name);
    return call;
}

ScheduleRows parse_schedule_rows(const redis::Reply& reply, std::string_view queue) {
    ScheduleRows out;
    const auto& items = reply.as_array();
    if (items.empty()) throw RedisError("schedule_rows: an empty reply");
    out.server_now_ms = items[0].as_integer();
    for (std::size_t i = 1; i < items.size(); ++i) {
        const auto& f = items[i];
        ScheduleRow row;
        row.name = f.at(0).as_string();
        row.queue = std::string(queue);
        row.cron = f.at(1).as_string();
        row.tz = f.at(2).as_string();
        row.catch_up = parse_catch_up(f.at(3).as_string()).value_or(CatchUp::latest);
        row.next_ms = number(f.at(4).as_string());
        row.paused = f.at(5).as_string() == "1";
        row.last_job = f.at(6).as_string();
        row.last_job_state = f.at(7).as_string();
        row.priority = number(f.at(8).as_string()).value_or(0);
        row.max_attempts = number(f.at(9).as_string()).value_or(10);
        if (auto timeout = number(f.at(10).as_string())) row.timeout = Millis(*timeout);
        row.unique_key = f.at(11).as_string();
        row.payload_bytes = f.at(12).as_integer();
        row.generation = number(f.at(13).as_string()).value_or(0);
        out.rows.push_back(std::move(row));
    }
    return out;
}

namespace {

SysSeconds seconds_of(long long ms) {
    return SysSeconds{std::chrono::seconds{ms / 1000 - (ms % 1000 < 0 ? 1 : 0)}};
}

long long ms_of(SysSeconds t) {
    return t.time_since_epoch().count() * 1000;
}

// A long outage walks every tick it missed to find the latest; past this many, the rest is left
// for the next round (a minutely schedule down for almost four years).
constexpr long long max_walk = 2'000'000;

}  // namespace

ScriptCall schedule_due_call(const QueueKeys& keys, std::string_view worker_id, Millis watch,
                             std::size_t limit) {
    auto call = make_call("schedule_due", keys);
    call.args.emplace_back(worker_id);
    call.args.push_back(std::to_string(watch.count()));
    call.args.push_back(std::to_string(limit));
    return call;
}

DueRead parse_schedule_due(const redis::Reply& reply) {
    DueRead out;
    const auto& items = reply.as_array();
    if (items.size() < 3) throw RedisError("schedule_due: a short reply");
    out.server_now_ms = items[0].as_integer();
    if (auto v = items[1].as_integer(); v >= 0) out.watched_until_ms = v;
    if (auto v = items[2].as_integer(); v >= 0) out.earliest_tick_ms = v;
    for (std::size_t i = 3; i < items.size(); ++i) {
        const auto& f = items[i];
        DueSchedule due;
        due.name = f.at(0).as_string();
        due.generation = f.at(1).as_string();
        due.next_ms = f.at(2).as_integer();
        due.cron = f.at(3).as_string();
        due.tz = f.at(4).as_string();
        due.catch_up = parse_catch_up(f.at(5).as_string()).value_or(CatchUp::latest);
        out.due.push_back(std::move(due));
    }
    return out;
}

FirePlan plan_fire(const CronExpression& expression, const TimeZone& zone, CatchUp catch_up,
                   long long next_ms, long long now_ms, std::optional<long long> watched_until_ms,
                   long long watch_start_ms, std::size_t max_steps) {
    FirePlan plan;
    auto following = [&](long long t) {
        auto next = next_tick(expression, zone, seconds_of(t));
        return next ? ms_of(*next) : never_ms;
    };
    auto missed = [&](long long t) {
        return !(watched_until_ms && t <= *watched_until_ms) && t < watch_start_ms;
    };
    const long long period_ms = expression.every.count() * 1000;
    std::optional<long long> latest_missed;
    // The missed ticks so far become one step: the latest's job, or none.
    auto settle_missed = [&](long long next_after) {
        if (!latest_missed) return;
        plan.steps.push_back(
            {catch_up == CatchUp::latest ? latest_missed : std::nullopt, next_after});
        latest_missed.reset();
    };
    long long t = next_ms;
    long long walked = 0;
    while (t <= now_ms && t != never_ms && plan.steps.size() < max_steps && walked < max_walk) {
        if (missed(t)) {
            if (!plan.first_missed_ms) plan.first_missed_ms = t;
            if (period_ms > 0) {
                // A fixed period: straight to the last tick of the outage.
                auto end = std::min(now_ms, watch_start_ms - 1);
                auto count = (end - t) / period_ms + 1;
                plan.missed += count;
                latest_missed = t + (count - 1) * period_ms;
                plan.last_missed_ms = latest_missed;
                t = *latest_missed + period_ms;
            } else {
                ++plan.missed;
                ++walked;
                latest_missed = t;
                plan.last_missed_ms = t;
                t = following(t);
            }
            continue;
        }
        settle_missed(t);
        auto next = following(t);
        plan.steps.push_back({t, next});
        t = next;
    }
    settle_missed(t);
    return plan;
}

ScriptCall schedule_fire_call(const QueueKeys& keys, const DueSchedule& schedule,
                              long long expected_next_ms, const FireStep& step,
                              std::optional<long long> id_fence_ms) {
    auto call = make_call("schedule_fire", keys);
    call.args.insert(
        call.args.end(),
        {schedule.name, schedule.generation, std::to_string(expected_next_ms),
         step.tick_ms ? std::to_string(*step.tick_ms) : "", std::to_string(step.new_next_ms),
         step.tick_ms ? tick_job_id(schedule.name, *step.tick_ms) : "",
         id_fence_ms ? std::to_string(*id_fence_ms) : ""});
    return call;
}

FireResult parse_schedule_fire(const redis::Reply& reply) {
    FireResult out;
    switch (reply.at(0).as_integer()) {
        case 1:
            out.status = FireStatus::done;
            break;
        case -1:
            out.status = FireStatus::gone;
            break;
        case -2:
            out.status = FireStatus::not_due;
            break;
        case -3:
            out.status = FireStatus::reservation_lapsed;
            break;
        default:
            out.status = FireStatus::refused;
    }
    out.job_id = reply.at(1).as_string();
    out.how = reply.at(2).as_string();
    if (auto v = reply.at(3).as_integer(); v >= 0) out.earliest_tick_ms = v;
    return out;
}

}  // namespace workq::queue
