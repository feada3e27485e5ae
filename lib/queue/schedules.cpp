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

}  // namespace workq::queue
