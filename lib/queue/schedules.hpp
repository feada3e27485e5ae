// Schedules (workq-schedule, CONTRACT.md section 11): each change as one call of one Lua script
// (lib/lua/schedule_*.lua), a builder and a reply parser as in transitions.hpp. A schedule
// lives in its queue's slot (keys.hpp: schedules, ticks, schedule:<name>), so defining, firing
// and removing it are each atomic on one node of a cluster. The server never parses cron: the
// caller computes ticks (util/cron.hpp) from the server's time and passes them in.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "queue/keys.hpp"
#include "queue/transitions.hpp"

namespace workq::queue {

enum class CatchUp { latest, none };
std::string_view to_string(CatchUp catch_up);
// nullopt for anything but "latest" and "none".
std::optional<CatchUp> parse_catch_up(std::string_view text);

// What each tick's job is made with, and when ticks fall.
struct ScheduleDefinition {
    std::string name;
    std::string cron;
    std::string tz = "UTC";
    CatchUp catch_up = CatchUp::latest;
    long long priority = 0;
    long long max_attempts = 10;
    std::optional<Millis> timeout;  // nullopt: the worker's
    std::string unique_key;         // empty: none
    std::string payload;
};

// The id of the job a tick makes: NAME.<tick in epoch seconds>.
std::string tick_job_id(std::string_view name, long long tick_ms);

// The longest schedule name: its jobs' ids add '.' and ten digits of epoch seconds, and an id
// holds at most 200 characters.
constexpr std::size_t max_schedule_name = 189;

// --- define --------------------------------------------------------------------------------------
struct DefineResult {
    bool created = false;  // false: an existing definition was replaced
    long long next_ms = 0;
    bool paused = false;
};
// first_tick_ms: the expression's first tick after the server's time, used unless the schedule
// exists with the same expression and zone (it keeps its next tick then).
ScriptCall schedule_define_call(const QueueKeys& keys, const ScheduleDefinition& definition,
                                long long first_tick_ms);
DefineResult parse_schedule_define(const redis::Reply& reply);

// --- remove, pause, resume
// ------------------------------------------------------------------------- Parse with parse_count:
// 1 removed, 0 no such schedule in this queue.
ScriptCall schedule_remove_call(const QueueKeys& keys, std::string_view name);

enum class PauseOutcome { changed, unchanged, unknown };
// Resuming needs the expression's first tick after the server's time; pausing ignores it.
ScriptCall schedule_set_paused_call(const QueueKeys& keys, std::string_view name, bool paused,
                                    long long first_tick_ms = 0);
PauseOutcome parse_schedule_set_paused(const redis::Reply& reply);

// --- reading
// ---------------------------------------------------------------------------------------
struct ScheduleRow {
    std::string name, queue, cron, tz;
    CatchUp catch_up = CatchUp::latest;
    std::optional<long long> next_ms;
    bool paused = false;
    std::string last_job;        // empty: none yet
    std::string last_job_state;  // a JobState's name, "unknown" when its record is gone
    long long priority = 0;
    long long max_attempts = 10;
    std::optional<Millis> timeout;
    std::string unique_key;
    long long payload_bytes = 0;
    long long generation = 0;
};
struct ScheduleRows {
    long long server_now_ms = 0;
    std::vector<ScheduleRow> rows;  // by name
};
// name empty: every schedule of the queue.
ScriptCall schedule_rows_call(const QueueKeys& keys, std::string_view name = {});
ScheduleRows parse_schedule_rows(const redis::Reply& reply, std::string_view queue);

}  // namespace workq::queue
