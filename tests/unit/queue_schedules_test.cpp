// Schedules (lib/queue/schedules, lib/lua/schedule_*.lua) against a real redis-server: define,
// replace, pause, resume, remove and read, checked on the raw keys.
#include "queue/schedules.hpp"

#include <gtest/gtest.h>

#include "queue/client.hpp"
#include "redis_fixture.hpp"

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

}  // namespace
}  // namespace workq::test
