// Schedules (lib/queue/schedules, lib/lua/schedule_*.lua) against a real redis-server: define,
// replace, pause, resume, remove and read, checked on the raw keys.
#include "queue/schedules.hpp"

#include <gtest/gtest.h>

#include "queue/client.hpp"
#include "redis_fixture.hpp"
#include "util/cron.hpp"

namespace workq::test {
namespace {

using queue::ScheduleDefinition;

class Schedules : public RedisTest {
  protected:
    ScheduleDefinition definition(std::string name, std::string cron = "@every 1s") {
        ScheduleDefinition d;
        d.name = std::move(name);
        d.cron = std::move(cron);
        d.payload = "p";
        return d;
    }
    queue::DefineResult define(const ScheduleDefinition& d, long long first_tick) {
        return queue::parse_schedule_define(
            engine().run(queue::schedule_define_call(keys(), d, first_tick)));
    }
    std::string field(std::string_view name, std::string_view f) {
        return raw().hget(keys().schedule(name), f).value_or("<none>");
    }
};

TEST(SchedulesPure, TickIdsAndCatchUp) {
    EXPECT_EQ(queue::tick_job_id("nightly", 1767317400000), "nightly.1767317400");
    EXPECT_EQ(queue::parse_catch_up("latest"), queue::CatchUp::latest);
    EXPECT_EQ(queue::parse_catch_up("none"), queue::CatchUp::none);
    EXPECT_FALSE(queue::parse_catch_up("all").has_value());
    EXPECT_EQ(queue::to_string(queue::CatchUp::none), "none");
    // The longest name still makes a valid job id.
    EXPECT_EQ(queue::tick_job_id(std::string(queue::max_schedule_name, 'n'), 9999999999000).size(),
              200u);
}

TEST_F(Schedules, DefineWritesTheRecordTheTickAndWakesWorkers) {
    auto d = definition("s", "0 3 * * *");
    d.tz = "Europe/Berlin";
    d.catch_up = queue::CatchUp::none;
    d.priority = 5;
    d.max_attempts = 2;
    d.timeout = Millis(90000);
    d.unique_key = "u";
    auto result = define(d, 5000);
    EXPECT_TRUE(result.created);
    EXPECT_EQ(result.next_ms, 5000);
    EXPECT_FALSE(result.paused);
    auto record = raw().hgetall(keys().schedule("s"));
    EXPECT_EQ(record["cron"], "0 3 * * *");
    EXPECT_EQ(record["tz"], "Europe/Berlin");
    EXPECT_EQ(record["catch_up"], "none");
    EXPECT_EQ(record["prio"], "5");
    EXPECT_EQ(record["max"], "2");
    EXPECT_EQ(record["timeout"], "90000");
    EXPECT_EQ(record["unique"], "u");
    EXPECT_EQ(record["payload"], "p");
    EXPECT_EQ(record["next"], "5000");
    EXPECT_EQ(record["gen"], "1");
    EXPECT_EQ(raw().zscore(keys().ticks(), "s"), 5000);
    EXPECT_EQ(raw().llen(keys().wake()), 1);
    EXPECT_EQ(raw().hget(keys().meta(), "version"), "1");
}

TEST_F(Schedules, ReplacingKeepsTheNextTickOnlyForTheSameExpressionAndZone) {
    define(definition("s", "0 3 * * *"), 5000);
    auto again = define(definition("s", "0 3 * * *"), 9000);
    EXPECT_FALSE(again.created);
    EXPECT_EQ(again.next_ms, 5000);
    EXPECT_EQ(field("s", "gen"), "2");
    auto other = define(definition("s", "0 4 * * *"), 9000);
    EXPECT_EQ(other.next_ms, 9000);
    auto zone = definition("s", "0 4 * * *");
    zone.tz = "Asia/Tokyo";
    EXPECT_EQ(define(zone, 7000).next_ms, 7000);
    EXPECT_EQ(raw().zscore(keys().ticks(), "s"), 7000);
}

TEST_F(Schedules, PauseTakesTheTickAwayResumeRestartsFromTheGivenTick) {
    define(definition("s"), 5000);
    auto pause = [&](bool paused, long long first = 0) {
        return queue::parse_schedule_set_paused(
            engine().run(queue::schedule_set_paused_call(keys(), "s", paused, first)));
    };
    EXPECT_EQ(pause(true), queue::PauseOutcome::changed);
    EXPECT_EQ(pause(true), queue::PauseOutcome::unchanged);
    EXPECT_FALSE(raw().zscore(keys().ticks(), "s").has_value());
    // Replacing keeps the pause.
    EXPECT_TRUE(define(definition("s"), 6000).paused);
    EXPECT_FALSE(raw().zscore(keys().ticks(), "s").has_value());
    EXPECT_EQ(pause(false, 8000), queue::PauseOutcome::changed);
    EXPECT_EQ(raw().zscore(keys().ticks(), "s"), 8000);
    EXPECT_EQ(field("s", "next"), "8000");
    EXPECT_EQ(queue::parse_schedule_set_paused(
                  engine().run(queue::schedule_set_paused_call(keys(), "nope", true))),
              queue::PauseOutcome::unknown);
}

TEST_F(Schedules, RemoveLeavesNoKeyBehind) {
    define(definition("s"), 5000);
    EXPECT_EQ(queue::parse_count(engine().run(queue::schedule_remove_call(keys(), "s"))), 1);
    EXPECT_EQ(queue::parse_count(engine().run(queue::schedule_remove_call(keys(), "s"))), 0);
    EXPECT_FALSE(raw().exists(keys().schedule("s")));
    EXPECT_EQ(raw().zcard(keys().ticks()), 0);
    EXPECT_FALSE(raw().exists(keys().schedules()));
}

TEST_F(Schedules, RowsAreSortedByNameWithTheLastJobsState) {
    define(definition("b"), 5000);
    define(definition("a", "@daily"), 6000);
    raw().call({"HSET", keys().schedule("b"), "last_job", "b.5"});
    raw().call({"HSET", keys().job("b.5"), "state", "running"});
    raw().call({"HSET", keys().schedule("a"), "last_job", "a.6"});  // its record expired
    auto read = queue::parse_schedule_rows(engine().run(queue::schedule_rows_call(keys())), "q");
    ASSERT_EQ(read.rows.size(), 2u);
    EXPECT_GT(read.server_now_ms, 0);
    EXPECT_EQ(read.rows[0].name, "a");
    EXPECT_EQ(read.rows[0].cron, "@daily");
    EXPECT_EQ(read.rows[0].last_job_state, "unknown");
    EXPECT_EQ(read.rows[1].name, "b");
    EXPECT_EQ(read.rows[1].last_job, "b.5");
    EXPECT_EQ(read.rows[1].last_job_state, "running");
    EXPECT_EQ(read.rows[1].next_ms, 5000);
    EXPECT_EQ(read.rows[1].payload_bytes, 1);
    EXPECT_EQ(read.rows[1].queue, "q");
    auto one =
        queue::parse_schedule_rows(engine().run(queue::schedule_rows_call(keys(), "b")), "q");
    ASSERT_EQ(one.rows.size(), 1u);
    EXPECT_EQ(one.rows[0].name, "b");
}

// --- firing
// ----------------------------------------------------------------------------------------

std::vector<std::pair<std::optional<long long>, long long>> steps_of(const queue::FirePlan& plan) {
    std::vector<std::pair<std::optional<long long>, long long>> out;
    for (const auto& step : plan.steps)
        out.emplace_back(step.tick_ms, step.new_next_ms);
    return out;
}

using Steps = std::vector<std::pair<std::optional<long long>, long long>>;

TEST(PlanFire, OnTimeTicksEachMakeAJobInOrder) {
    auto every = parse_cron("@every 1s");
    // Watching since 0: every due tick is on time.
    auto plan = queue::plan_fire(every, TimeZone{}, queue::CatchUp::latest, 10000, 12500,
                                 std::nullopt, 0, 100);
    EXPECT_EQ(steps_of(plan), (Steps{{10000, 11000}, {11000, 12000}, {12000, 13000}}));
    EXPECT_EQ(plan.missed, 0);
    // Nothing due: nothing to do.
    EXPECT_TRUE(queue::plan_fire(every, TimeZone{}, queue::CatchUp::latest, 13000, 12500,
                                 std::nullopt, 0, 100)
                    .steps.empty());
    // At most max_steps: the rest next round.
    EXPECT_EQ(queue::plan_fire(every, TimeZone{}, queue::CatchUp::latest, 10000, 20000,
                               std::nullopt, 0, 2)
                  .steps.size(),
              2u);
}

TEST(PlanFire, TicksWhileNobodyWatchedAreMissedTheCatchUpDecides) {
    auto every = parse_cron("@every 1s");
    // Watched until 10500, this worker since 15200: 11000..15000 fell while nobody watched.
    auto latest = queue::plan_fire(every, TimeZone{}, queue::CatchUp::latest, 10000, 16300, 10500,
                                   15200, 100);
    EXPECT_EQ(steps_of(latest), (Steps{{10000, 11000}, {15000, 16000}, {16000, 17000}}));
    EXPECT_EQ(latest.missed, 5);
    EXPECT_EQ(latest.first_missed_ms, 11000);
    EXPECT_EQ(latest.last_missed_ms, 15000);
    auto none =
        queue::plan_fire(every, TimeZone{}, queue::CatchUp::none, 10000, 16300, 10500, 15200, 100);
    EXPECT_EQ(steps_of(none), (Steps{{10000, 11000}, {std::nullopt, 16000}, {16000, 17000}}));
    // The same through a cron expression (the walk instead of the arithmetic).
    auto minutely = parse_cron("* * * * *");
    auto walked = queue::plan_fire(minutely, TimeZone{}, queue::CatchUp::latest, 60000, 400000,
                                   std::nullopt, 390000, 100);
    EXPECT_EQ(steps_of(walked), (Steps{{360000, 420000}}));
    EXPECT_EQ(walked.missed, 6);
    // A year of a per-second schedule missed: one step, straight to the end.
    constexpr long long year_ms = 365LL * 86400000;
    auto outage = queue::plan_fire(every, TimeZone{}, queue::CatchUp::latest, 0, year_ms - 1,
                                   std::nullopt, year_ms - 1, 100);
    EXPECT_EQ(steps_of(outage), (Steps{{year_ms - 1000, year_ms}}));
    EXPECT_EQ(outage.missed, 365LL * 86400);
    // The last tick ever: the schedule rests at never_ms.
    auto once = queue::plan_fire(parse_cron("0 0 1 1 *"), TimeZone{}, queue::CatchUp::latest,
                                 4102444800000, 4102444800500, std::nullopt, 0, 100);
    ASSERT_EQ(once.steps.size(), 1u);
    EXPECT_EQ(once.steps[0].new_next_ms, 4133980800000);
}

class Firing : public Schedules {
  protected:
    queue::DueRead due(std::string_view worker = "w1", Millis watch = 10000ms) {
        return queue::parse_schedule_due(
            engine().run(queue::schedule_due_call(keys(), worker, watch, 100)));
    }
    // One step, its tick's id reserved first for this queue, as the worker does.
    queue::FireResult fire(const queue::DueSchedule& schedule, long long expected,
                           std::optional<long long> tick, long long new_next) {
        std::optional<long long> fence;
        if (tick) {
            std::vector<std::string> ids{queue::tick_job_id(schedule.name, *tick)};
            auto reservation = queue::parse_reserve_id(
                engine().run(queue::reserve_id_call(queue::NamespaceKeys(ns()), ids, "q")));
            EXPECT_TRUE(reservation.at(0).held);
            fence = reservation.at(0).deadline_ms;
        }
        return queue::parse_schedule_fire(engine().run(
            queue::schedule_fire_call(keys(), schedule, expected, {tick, new_next}, fence)));
    }
};

TEST_F(Firing, DueListsUnpausedSchedulesWhoseTickHasComeAndRecordsTheWatch) {
    auto now = raw().server_now_ms();
    define(definition("due"), now - 5000);
    define(definition("later"), now + 600000);
    auto read = due();
    EXPECT_FALSE(read.watched_until_ms.has_value());
    EXPECT_EQ(read.earliest_tick_ms, now - 5000);
    ASSERT_EQ(read.due.size(), 1u);
    EXPECT_EQ(read.due[0].name, "due");
    EXPECT_EQ(read.due[0].generation, "1");
    EXPECT_EQ(read.due[0].next_ms, now - 5000);
    EXPECT_EQ(read.due[0].cron, "@every 1s");
    auto again = due("w2");
    ASSERT_TRUE(again.watched_until_ms.has_value());
    EXPECT_GE(*again.watched_until_ms, now + 10000);
    // Stopping: the watch ends now.
    due("w1", 0ms);
    due("w2", 0ms);
    EXPECT_LT(*due("w3").watched_until_ms, now + 10000);
}

TEST_F(Firing, AStepMakesTheTicksJobAndAdvancesTheScheduleOnce) {
    auto d = definition("s");
    d.priority = 3;
    d.max_attempts = 2;
    d.timeout = Millis(5000);
    auto now = raw().server_now_ms() / 1000 * 1000;
    define(d, now - 2000);
    auto schedule = due().due.at(0);
    auto first = fire(schedule, now - 2000, now - 2000, now - 1000);
    EXPECT_EQ(first.status, queue::FireStatus::done);
    EXPECT_EQ(first.how, "created");
    EXPECT_EQ(first.job_id, queue::tick_job_id("s", now - 2000));
    auto job = raw().hgetall(keys().job(first.job_id));
    EXPECT_EQ(job["state"], "waiting");
    EXPECT_EQ(job["payload"], "p");
    EXPECT_EQ(job["prio"], "3");
    EXPECT_EQ(job["max"], "2");
    EXPECT_EQ(job["timeout"], "5000");
    EXPECT_EQ(raw().lrange(keys().waiting(3)), std::vector<std::string>{first.job_id});
    EXPECT_EQ(field("s", "next"), std::to_string(now - 1000));
    EXPECT_EQ(field("s", "last_job"), first.job_id);
    EXPECT_EQ(raw().zscore(keys().ticks(), "s"), now - 1000);
    // A second worker with the same read: refused, nothing made.
    auto second = fire(schedule, now - 2000, now - 2000, now - 1000);
    EXPECT_EQ(second.status, queue::FireStatus::refused);
    EXPECT_EQ(raw().llen(keys().waiting(3)), 1);
    // A tick in the future: refused by the server's clock.
    EXPECT_EQ(fire(schedule, now - 1000, now + 600000, now + 601000).status,
              queue::FireStatus::not_due);
    // Skipping a tick (--catch-up none): no job, the schedule advances.
    auto skip = fire(schedule, now - 1000, std::nullopt, now);
    EXPECT_EQ(skip.status, queue::FireStatus::done);
    EXPECT_EQ(skip.how, "");
    EXPECT_EQ(field("s", "next"), std::to_string(now));
    EXPECT_EQ(raw().llen(keys().waiting(3)), 1);
}

TEST_F(Firing, AStepPastItsIdReservationMakesNothing) {
    auto now = raw().server_now_ms() / 1000 * 1000;
    define(definition("s"), now - 1000);
    auto schedule = due().due.at(0);
    // The reservation's deadline is 2 s (the clock margin) from now: the fence is closed.
    auto lapsed = queue::parse_schedule_fire(engine().run(queue::schedule_fire_call(
        keys(), schedule, now - 1000, {now - 1000, now}, raw().server_now_ms() + 1000)));
    EXPECT_EQ(lapsed.status, queue::FireStatus::reservation_lapsed);
    EXPECT_EQ(field("s", "next"), std::to_string(now - 1000));
    EXPECT_FALSE(raw().exists(keys().job(queue::tick_job_id("s", now - 1000))));
    // A step with a tick and no reservation at all is a caller's bug: refused as malformed.
    EXPECT_THROW(engine().run(queue::schedule_fire_call(keys(), schedule, now - 1000,
                                                        {now - 1000, now}, std::nullopt)),
                 RedisError);
}

TEST_F(Firing, AReplacedPausedOrRemovedScheduleRefusesTheStep) {
    auto now = raw().server_now_ms();
    define(definition("s"), now - 1000);
    auto schedule = due().due.at(0);
    define(definition("s"), now - 1000);  // the same definition again: a new generation
    EXPECT_EQ(fire(schedule, now - 1000, now - 1000, now).status, queue::FireStatus::refused);
    schedule = due().due.at(0);
    engine().run(queue::schedule_set_paused_call(keys(), "s", true));
    EXPECT_EQ(fire(schedule, now - 1000, now - 1000, now).status, queue::FireStatus::refused);
    engine().run(queue::schedule_remove_call(keys(), "s"));
    EXPECT_EQ(fire(schedule, now - 1000, now - 1000, now).status, queue::FireStatus::gone);
    EXPECT_EQ(raw().llen(keys().waiting(0)), 0);
}

TEST_F(Firing, AnExistingIdOrAHeldUniqueKeyMakesNoSecondJob) {
    auto now = raw().server_now_ms() / 1000 * 1000;
    auto d = definition("s");
    d.unique_key = "only-one";
    define(d, now - 3000);
    // Somebody made the tick's job already (workq-enqueue --id): it stays the only one.
    engine().enqueue_one(keys(), queue::tick_job_id("s", now - 3000), Options().caller_ids(true));
    auto schedule = due().due.at(0);
    auto exists = fire(schedule, now - 3000, now - 3000, now - 2000);
    EXPECT_EQ(exists.status, queue::FireStatus::done);
    EXPECT_EQ(exists.how, "exists");
    // A live job holds the unique key: no job for the next tick either.
    engine().enqueue_one(keys(), "holder", Options().unique_key("only-one"));
    auto held = fire(schedule, now - 2000, now - 2000, now - 1000);
    EXPECT_EQ(held.how, "unique");
    EXPECT_EQ(held.job_id, "holder");
    EXPECT_FALSE(raw().exists(keys().job(queue::tick_job_id("s", now - 2000))));
    EXPECT_EQ(field("s", "last_job"), "holder");
}

}  // namespace
}  // namespace workq::test
