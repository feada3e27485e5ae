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
#include "util/cron.hpp"

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

// --- firing (workq-work)
// ----------------------------------------------------------------------------- How long a worker
// vouches, on each round, to fire its queues' ticks: ticks before a watcher's deadline were not
// missed, only late. Above the reaper's period (4 s, jittered), on which the rounds run, with room
// for a slow round trip.
constexpr Millis watch_period{10000};

struct DueSchedule {
    std::string name;
    std::string generation;
    long long next_ms = 0;
    std::string cron, tz;
    CatchUp catch_up = CatchUp::latest;
};
struct DueRead {
    long long server_now_ms = 0;
    std::optional<long long> watched_until_ms;  // before this round: until when someone watched
    std::optional<long long> earliest_tick_ms;  // of the queue's unpaused schedules
    std::vector<DueSchedule> due;
};
// A firer's round on one queue: records `worker_id` as watching for `watch` (0: it stops now).
ScriptCall schedule_due_call(const QueueKeys& keys, std::string_view worker_id, Millis watch,
                             std::size_t limit);
DueRead parse_schedule_due(const redis::Reply& reply);

// One step of a schedule: the job of `tick_ms` (nullopt: no job, the tick is skipped) and the
// next tick after it. Each step expects the schedule's next tick to be the previous step's
// new_next_ms (the first step: the schedule's own).
struct FireStep {
    std::optional<long long> tick_ms;
    long long new_next_ms = 0;
};
struct FirePlan {
    std::vector<FireStep> steps;
    long long missed = 0;  // ticks that fell while no worker watched the queue
    std::optional<long long> first_missed_ms, last_missed_ms;
};
// The steps that bring a due schedule (next tick `next_ms`) up to the server's `now_ms`. A tick
// was missed when it fell after every watcher's deadline (`watched_until_ms`) and before this
// worker started watching (`watch_start_ms`); every other due tick makes its job, in order.
// Missed ticks make one job for the latest (CatchUp::latest) or none. At most `max_steps`
// steps: the rest wait for the next round. A tick after which the expression never fires again
// leaves the schedule at `never_ms`.
FirePlan plan_fire(const CronExpression& expression, const TimeZone& zone, CatchUp catch_up,
                   long long next_ms, long long now_ms, std::optional<long long> watched_until_ms,
                   long long watch_start_ms, std::size_t max_steps);
constexpr long long never_ms = 253402300799000;  // 9999-12-31T23:59:59Z

enum class FireStatus { done, refused, gone, not_due, reservation_lapsed };
struct FireResult {
    FireStatus status = FireStatus::refused;
    std::string job_id;  // the tick's job, or the live job holding its --unique key
    std::string how;     // "created", "exists", "unique", or empty (no job asked for)
    std::optional<long long> earliest_tick_ms;
};
// A step with a tick needs its job id reserved in the namespace first, as workq-enqueue --id
// does (reserve_id_call): `id_fence_ms` is the reservation's deadline.
ScriptCall schedule_fire_call(const QueueKeys& keys, const DueSchedule& schedule,
                              long long expected_next_ms, const FireStep& step,
                              std::optional<long long> id_fence_ms);
FireResult parse_schedule_fire(const redis::Reply& reply);

}  // namespace workq::queue
