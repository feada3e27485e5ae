// Damaged data (README, "Damaged data"; issue 23, item 2): keys of the wrong type and fields
// workq never writes, at every kind of key a queue has, met by every transition. Redis does
// not roll a script back when it fails half-way, so the property is: every script either
// finishes, or refuses (QueueDamagedError, DataVersionError) having changed nothing; never a
// Lua error after a write. A bad job record is quarantined (dead-lettered with a reason); one
// queue's damage never stops another queue.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "queue/client.hpp"
#include "queue/registry.hpp"
#include "queue/schedules.hpp"
#include "queue/scripts.hpp"
#include "queue/transitions.hpp"
#include "redis/cluster.hpp"
#include "redis/script.hpp"
#include "redis/url.hpp"
#include "redis_fixture.hpp"

namespace workq::test {
namespace {

using queue::EnqueueStatus;
using queue::JobState;
using queue::Settle;

// Every key of the queue (its prefix), with its type, value (DUMP) and whether it expires: in
// one round trip (a script of the test's own, not workq's).
std::map<std::string, std::string> dump_queue(Raw raw, const queue::QueueKeys& k) {
    auto reply = raw.call({"EVAL", R"(
        local out, cursor = {}, '0'
        repeat
            local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
            cursor = page[1]
            for _, key in ipairs(page[2]) do
                out[#out + 1] = key
                out[#out + 1] = redis.call('TYPE', key).ok .. '|' .. (redis.call('DUMP', key) or '') ..
                    '|' .. (redis.call('PTTL', key) < 0 and 'none' or 'ttl')
            end
        until cursor == '0'
        return out)",
                           "0", k.prefix() + "*"});
    std::map<std::string, std::string> out;
    const auto& items = reply.as_array();
    for (std::size_t i = 0; i + 1 < items.size(); i += 2)
        out[items[i].as_string()] = items[i + 1].as_string();
    return out;
}

// A queue with a job in every state: waiting at two priorities, scheduled far and due,
// running under a long lease and a lapsed one, dead; unique keys and a --wait flag on some;
// fleet limits (a rate log of its starts), a schedule whose tick is due (its job at priority
// 5, under a unique key), a paused one, and a worker watching the ticks.
struct Scene {
    queue::QueueKeys k;
    queue::ClaimedJob held;    // running, long lease
    queue::ClaimedJob lapsed;  // running, lease lapsed
    long long tick = 0;        // schedule s1's next tick (due)
};

// The namespace of a queue's keys: "{NS:QUEUE}:" -> NS.
queue::NamespaceKeys namespace_of(const queue::QueueKeys& k) {
    const auto& prefix = k.prefix();
    return queue::NamespaceKeys(prefix.substr(1, prefix.find(':') - 1));
}

queue::ScheduleDefinition schedule_definition(std::string name, long long priority = 0) {
    queue::ScheduleDefinition d;
    d.name = std::move(name);
    d.cron = "@every 60s";
    d.priority = priority;
    d.unique_key = "u-tick";
    d.payload = "p";
    return d;
}

class Damage : public RedisTest {
  protected:
    std::string state_of(const queue::QueueKeys& k, const std::string& id) {
        return raw().hget(k.job(id), "state").value_or("<no record>");
    }

    Scene build(const std::string& name) {
        auto k = keys(name);
        Scene scene{k, {}, {}, 0};
        auto enqueue = [&](const std::string& id, Options options) {
            EXPECT_EQ(engine().enqueue_one(k, id, options), EnqueueStatus::created) << id;
        };
        // A window of an hour: the rate log (which expires with its window) outlives the test.
        engine().run(queue::set_limits_call(k, queue::RateLimit{1000, 3600000ms}, 50));
        enqueue("held", Options().priority(9));
        enqueue("lapsed", Options().priority(9));
        enqueue("corpse", Options().priority(9).max_attempts(1));
        scene.held = engine().claim(k, "w1", 600000ms, 1).jobs.at(0);
        scene.lapsed = engine().claim(k, "w1", 1ms, 1).jobs.at(0);
        auto corpse = engine().claim(k, "w1", 600000ms, 1).jobs.at(0);
        EXPECT_EQ(engine().fail(k, "corpse", corpse.token, std::nullopt).state, JobState::dead);
        enqueue("w0", Options().unique_key("u0"));
        enqueue("w5", Options().priority(5));
        queue::EnqueueOptions waited = Options().unique_key("u1");
        waited.notify = true;
        EXPECT_EQ(engine().enqueue(k, {{"w-notify", "p"}}, waited).at(0).status,
                  EnqueueStatus::created);
        enqueue("s-far", Options().delay(3600000ms));
        enqueue("s-due", Options().delay(1ms));
        scene.tick = raw().server_now_ms() - 1000;
        engine().run(queue::schedule_define_call(k, schedule_definition("s1", 5), scene.tick));
        engine().run(
            queue::schedule_define_call(k, schedule_definition("s2"), scene.tick + 3600000));
        engine().run(queue::schedule_set_paused_call(k, "s2", true));
        engine().run(queue::schedule_due_call(k, "w1", 600000ms, 0));
        // The lapsed lease and the due job are past by the server's clock.
        EXPECT_TRUE(wait_until([&] {
            auto now = raw().server_now_ms();
            return now > *raw().zscore(k.running(), "lapsed") &&
                   now > *raw().zscore(k.scheduled(), "s-due");
        }));
        return scene;
    }

    // A copy of `from` under another queue name: every key, value and time to live, in one
    // round trip (the ids inside are the same, and so are the held tokens).
    Scene copy(const Scene& from, const std::string& name) {
        auto k = keys(name);
        raw().call({"EVAL", R"(
            local cursor = '0'
            repeat
                local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1] .. '*', 'COUNT', 1000)
                cursor = page[1]
                for _, key in ipairs(page[2]) do
                    local ttl = redis.call('PTTL', key)
                    redis.call('RESTORE', ARGV[2] .. string.sub(key, #ARGV[1] + 1),
                               ttl > 0 and ttl or 0, redis.call('DUMP', key))
                end
            until cursor == '0')",
                    "0", from.k.prefix(), k.prefix()});
        return {k, from.held, from.lapsed, from.tick};
    }

    // Removes every key of the queue: the server stays small, so that SCAN stays quick.
    void drop(const queue::QueueKeys& k) {
        raw().call({"EVAL", R"(
            local cursor = '0'
            repeat
                local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1] .. '*', 'COUNT', 1000)
                cursor = page[1]
                for _, key in ipairs(page[2]) do redis.call('DEL', key) end
            until cursor == '0')",
                    "0", k.prefix()});
    }
};

struct Corruption {
    std::string name;
    std::function<void(Raw, const queue::QueueKeys&)> apply;
};

std::vector<Corruption> corruptions() {
    auto replace = [](std::string suffix, std::string with) {
        return [suffix, with](Raw raw, const queue::QueueKeys& k) {
            raw.call({"DEL", k.prefix() + suffix});
            if (with == "string") raw.call({"SET", k.prefix() + suffix, "x"});
            if (with == "hash") raw.call({"HSET", k.prefix() + suffix, "f", "x"});
            if (with == "zset") raw.call({"ZADD", k.prefix() + suffix, "1", "x"});
            if (with == "list") raw.call({"RPUSH", k.prefix() + suffix, "x"});
            if (with == "set") raw.call({"SADD", k.prefix() + suffix, "x"});
        };
    };
    auto field = [](std::string id, std::string name, std::string value) {
        return [id, name, value](Raw raw, const queue::QueueKeys& k) {
            raw.call({"HSET", k.job(id), name, value});
        };
    };
    std::vector<Corruption> out;
    // Every structure of a queue, as another type.
    for (std::string suffix :
         {"meta", "priorities", "scheduled", "running", "dead", "waiting:0", "waiting:5",
          "waiting:9", "schedules", "ticks", "wake", "starts", "watchers", "schedule:s1"})
        out.push_back({suffix + " as a string", replace(suffix, "string")});
    out.push_back({"ticks as a set", replace("ticks", "set")});
    out.push_back({"starts as a list", replace("starts", "list")});
    out.push_back({"schedule:s2 as a list", replace("schedule:s2", "list")});
    out.push_back({"meta as a list", replace("meta", "list")});
    out.push_back({"running as a hash", replace("running", "hash")});
    out.push_back({"waiting:0 as a set", replace("waiting:0", "set")});
    // The meta's fields.
    out.push_back({"meta version x", [](Raw raw, const queue::QueueKeys& k) {
                       raw.call({"HSET", k.meta(), "version", "x"});
                   }});
    out.push_back({"meta limits x", [](Raw raw, const queue::QueueKeys& k) {
                       raw.call({"HSET", k.meta(), "limit_rate", "nan", "limit_window", "x",
                                 "limit_concurrency", "1e9"});
                   }});
    out.push_back({"meta limits negative", [](Raw raw, const queue::QueueKeys& k) {
                       raw.call({"HSET", k.meta(), "limit_rate", "-5", "limit_window", "-1",
                                 "limit_concurrency", "-3"});
                   }});
    // A schedule's fields workq never writes.
    for (std::string f : {"prio", "max", "timeout", "next", "gen"})
        out.push_back({"schedule:s1 " + f + " nan", [f](Raw raw, const queue::QueueKeys& k) {
                           raw.call({"HSET", k.schedule("s1"), f, "nan"});
                       }});
    out.push_back({"schedule:s1 prio 10000000", [](Raw raw, const queue::QueueKeys& k) {
                       raw.call({"HSET", k.schedule("s1"), "prio", "10000000"});
                   }});
    out.push_back({"schedule:s1 without cron", [](Raw raw, const queue::QueueKeys& k) {
                       raw.call({"HDEL", k.schedule("s1"), "cron"});
                   }});
    out.push_back({"unique:u-tick as a zset", replace("unique:u-tick", "zset")});
    out.push_back({"meta counters x", [](Raw raw, const queue::QueueKeys& k) {
                       raw.call({"HSET", k.meta(), "failed", "x", "succeeded", "nan", "trimmed",
                                 "1e400", "dead_max", "nan", "rate_minute", "inf"});
                   }});
    // Every kind of job record, in every live state.
    for (std::string id : {"w0", "w5", "s-due", "held", "lapsed", "corpse"}) {
        out.push_back({"job:" + id + " as a string", replace("job:" + id, "string")});
        out.push_back({id + " prio nan", field(id, "prio", "nan")});
        out.push_back({id + " attempts x", field(id, "attempts", "x")});
        out.push_back({id + " max -1", field(id, "max", "-1")});
        out.push_back({id + " state bogus", field(id, "state", "bogus")});
        out.push_back({"errors:" + id + " as a string", replace("errors:" + id, "string")});
        out.push_back({id + " without payload", [id](Raw raw, const queue::QueueKeys& k) {
                           raw.call({"HDEL", k.job(id), "payload"});
                       }});
    }
    out.push_back({"job:held as a zset", replace("job:held", "zset")});
    out.push_back({"w0 timeout 1e9", field("w0", "timeout", "1e9")});
    out.push_back({"prio 10000000", field("w5", "prio", "10000000")});
    out.push_back({"unique:u0 as a hash", replace("unique:u0", "hash")});
    out.push_back({"unique:u1 as a list", replace("unique:u1", "list")});
    out.push_back({"done:w-notify as a string", replace("done:w-notify", "string")});
    out.push_back({"a due job's record missing", [](Raw raw, const queue::QueueKeys& k) {
                       raw.call({"DEL", k.job("s-due")});
                   }});
    return out;
}

struct Operation {
    std::string name;
    std::function<void(Engine&, const Scene&, const queue::QueueKeys& healthy)> run;
};

std::vector<Operation> operations() {
    using queue::PurgeWhich;
    std::vector<Operation> out{
        {"enqueue", [](Engine& e, const Scene& s, auto&) { e.enqueue_one(s.k, "new"); }},
        {"enqueue at 5", [](Engine& e, const Scene& s,
                            auto&) { e.enqueue_one(s.k, "new", Options().priority(5)); }},
        {"enqueue scheduled", [](Engine& e, const Scene& s,
                                 auto&) { e.enqueue_one(s.k, "new", Options().delay(60000ms)); }},
        {"enqueue unique", [](Engine& e, const Scene& s,
                              auto&) { e.enqueue_one(s.k, "new", Options().unique_key("u0")); }},
        {"claim", [](Engine& e, const Scene& s, auto&) { e.claim(s.k, "w2", 60000ms, 20); }},
        {"claim two queues",
         [](Engine& e, const Scene& s, const queue::QueueKeys& healthy) {
             e.claim(std::vector<queue::QueueKeys>{s.k, healthy}, "w2", 60000ms, 20);
         }},
        {"complete",
         [](Engine& e, const Scene& s, auto&) { e.complete(s.k, s.held.id, s.held.token); }},
        {"complete lapsed",
         [](Engine& e, const Scene& s, auto&) { e.complete(s.k, s.lapsed.id, s.lapsed.token); }},
        {"fail retry",
         [](Engine& e, const Scene& s, auto&) { e.fail(s.k, s.held.id, s.held.token, 0ms); }},
        {"fail permanent", [](Engine& e, const Scene& s,
                              auto&) { e.fail(s.k, s.held.id, s.held.token, std::nullopt); }},
        {"release",
         [](Engine& e, const Scene& s, auto&) { e.release(s.k, s.held.id, s.held.token); }},
        {"renew", [](Engine& e, const Scene& s, auto&) { e.renew(s.k, s.held.id, s.held.token); }},
        {"renew lapsed",
         [](Engine& e, const Scene& s, auto&) { e.renew(s.k, s.lapsed.id, s.lapsed.token); }},
        {"reap", [](Engine& e, const Scene& s, auto&) { e.reap(s.k); }},
        {"cancel all",
         [](Engine& e, const Scene& s, auto&) {
             e.cancel(s.k, {"w0", "w5", "w-notify", "s-far", "s-due", "held", "lapsed", "corpse"});
         }},
        {"purge", [](Engine& e, const Scene& s, auto&) { e.purge(s.k, PurgeWhich::both, 100); }},
        {"requeue", [](Engine& e, const Scene& s, auto&) { e.requeue(s.k, {"corpse"}); }},
        {"requeue oldest", [](Engine& e, const Scene& s, auto&) { e.requeue(s.k, {}, 10); }},
        {"delete dead", [](Engine& e, const Scene& s, auto&) { e.delete_dead(s.k, {"corpse"}); }},
        {"dead cap", [](Engine& e, const Scene& s, auto&) { e.dead_cap(s.k, 1, 0ms); }},
        {"pause", [](Engine& e, const Scene& s, auto&) { e.set_paused(s.k, true); }},
        {"stats", [](Engine& e, const Scene& s, auto&) { e.stats(s.k); }},
        {"set limits",
         [](Engine& e, const Scene& s, auto&) {
             queue::parse_limits(
                 e.run(queue::set_limits_call(s.k, queue::RateLimit{5, 1000ms}, 2)));
         }},
        {"clear limits",
         [](Engine& e, const Scene& s, auto&) {
             queue::parse_limits(e.run(queue::set_limits_call(s.k, queue::RateLimit{}, 0)));
         }},
        {"schedule define",
         [](Engine& e, const Scene& s, auto&) {
             queue::parse_schedule_define(
                 e.run(queue::schedule_define_call(s.k, schedule_definition("s1", 5), s.tick)));
             queue::parse_schedule_define(
                 e.run(queue::schedule_define_call(s.k, schedule_definition("s3"), s.tick)));
         }},
        {"schedule remove",
         [](Engine& e, const Scene& s, auto&) { e.run(queue::schedule_remove_call(s.k, "s1")); }},
        {"schedule pause",
         [](Engine& e, const Scene& s, auto&) {
             queue::parse_schedule_set_paused(
                 e.run(queue::schedule_set_paused_call(s.k, "s1", true)));
         }},
        {"schedule resume",
         [](Engine& e, const Scene& s, auto&) {
             queue::parse_schedule_set_paused(
                 e.run(queue::schedule_set_paused_call(s.k, "s2", false, s.tick + 3600000)));
         }},
        {"schedule rows",
         [](Engine& e, const Scene& s, auto&) {
             queue::parse_schedule_rows(e.run(queue::schedule_rows_call(s.k)), s.k.queue());
         }},
        {"schedule due",
         [](Engine& e, const Scene& s, auto&) {
             queue::parse_schedule_due(e.run(queue::schedule_due_call(s.k, "w2", 10000ms, 100)));
         }},
        {"schedule fire",
         [](Engine& e, const Scene& s, auto&) {
             // As the worker does: the tick's id reserved for the queue, then the step.
             auto id = queue::tick_job_id("s1", s.tick);
             std::vector<std::string> ids{id};
             auto reservation = queue::parse_reserve_id(
                 e.run(queue::reserve_id_call(namespace_of(s.k), ids, s.k.queue())));
             EXPECT_TRUE(reservation.at(0).held);
             // Given back however the step ends: every scene's tick has the same id.
             struct Release {
                 Engine& e;
                 const Scene& s;
                 std::vector<std::string> ids;
                 ~Release() {
                     try {
                         e.run(queue::release_id_call(namespace_of(s.k), ids, s.k.queue()));
                     } catch (const std::exception& error) {
                         ADD_FAILURE() << "release: " << error.what();
                     }
                 }
             } release{e, s, ids};
             queue::DueSchedule due;
             due.name = "s1";
             due.generation = "1";
             due.next_ms = s.tick;
             due.cron = "@every 60s";
             queue::parse_schedule_fire(e.run(queue::schedule_fire_call(
                 s.k, due, s.tick, {s.tick, s.tick + 60000}, reservation.at(0).deadline_ms)));
         }},
        {"schedule skip a tick",
         [](Engine& e, const Scene& s, auto&) {
             queue::DueSchedule due;
             due.name = "s1";
             due.generation = "1";
             due.next_ms = s.tick;
             queue::parse_schedule_fire(e.run(queue::schedule_fire_call(
                 s.k, due, s.tick, {std::nullopt, s.tick + 60000}, std::nullopt)));
         }},
        {"job info",
         [](Engine& e, const Scene& s, auto&) {
             for (std::string id : {"w0", "w5", "s-due", "held", "lapsed", "corpse"})
                 e.job_info(s.k, id, true);
         }},
    };
    return out;
}

TEST_F(Damage, EveryScriptFinishesOrRefusesHavingChangedNothing) {
    auto healthy = keys("healthy");
    auto original = build("template");
    ASSERT_EQ(engine().enqueue_one(healthy, "h"), EnqueueStatus::created);
    int runs = 0, refusals = 0;
    std::map<std::string, int> refused_by;
    for (const auto& corruption : corruptions()) {
        for (const auto& operation : operations()) {
            SCOPED_TRACE(corruption.name + " / " + operation.name);
            auto scene = copy(original, fmt::format("q{}", runs++));
            corruption.apply(raw(), scene.k);
            auto before = dump_queue(raw(), scene.k);
            try {
                operation.run(engine(), scene, healthy);
            } catch (const queue::QueueDamagedError& error) {
                ++refusals;
                ++refused_by[corruption.name];
                EXPECT_EQ(dump_queue(raw(), scene.k), before)
                    << "refused after a write: " << error.what();
                EXPECT_NE(std::string(error.what()).find(scene.k.prefix()), std::string::npos)
                    << error.what();
            } catch (const std::exception& error) {
                ADD_FAILURE() << "not a refusal: " << error.what();
            }
            drop(scene.k);
        }
    }
    // Not vacuous: structures of the wrong type are refused; records are not (they are
    // quarantined); the signalling keys are replaced.
    EXPECT_GT(refused_by["meta as a string"], 10);
    EXPECT_GT(refused_by["running as a string"], 3);
    EXPECT_GT(refused_by["waiting:9 as a string"], 1);
    EXPECT_EQ(refused_by["w0 prio nan"], 0);
    EXPECT_EQ(refused_by["wake as a string"], 0);
    EXPECT_EQ(refused_by["errors:held as a string"], 0);
    EXPECT_GT(refused_by["starts as a string"], 1);       // set_limits, stats
    EXPECT_GT(refused_by["ticks as a string"], 4);        // the schedule scripts, stats
    EXPECT_GT(refused_by["watchers as a string"], 1);     // schedule_due, stats
    EXPECT_GT(refused_by["schedule:s1 prio nan"], 0);     // schedule_fire
    EXPECT_EQ(refused_by["schedule:s1 as a string"], 0);  // no schedule: replaced or passed by
    EXPECT_EQ(refused_by["meta limits x"], 0);            // limits that are none
    EXPECT_EQ(refused_by["unique:u-tick as a zset"], 0);
    RecordProperty("refusals", refusals);
}

TEST_F(Damage, AClaimOverSeveralQueuesSkipsADamagedOneNamesItAndServesTheOthers) {
    auto q1 = keys("q1"), q0 = keys("q0");
    ASSERT_EQ(engine().enqueue_one(q1, "one"), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(q0, "zero"), EnqueueStatus::created);
    raw().call({"DEL", q1.meta()});
    raw().call({"SET", q1.meta(), "x"});
    auto claimed = engine().claim({q1, q0}, "w1", 30000ms, 5);
    ASSERT_EQ(claimed.jobs.size(), 1u);
    EXPECT_EQ(claimed.jobs[0].id, "zero");
    EXPECT_EQ(claimed.jobs[0].queue_index, 1u);
    ASSERT_EQ(claimed.damaged.size(), 1u);
    EXPECT_EQ(claimed.damaged[0].queue_index, 0u);
    EXPECT_EQ(claimed.damaged[0].what, q1.meta() + " holds a string where workq keeps a hash");
    // Nothing of q1 was touched.
    EXPECT_EQ(raw().lrange(q1.waiting(0)), std::vector<std::string>{"one"});
    EXPECT_EQ(state_of(q1, "one"), "waiting");

    // Mended (the key moved away), the queue flows again.
    raw().call({"RENAME", q1.meta(), q1.prefix() + "meta-aside"});
    claimed = engine().claim({q1, q0}, "w1", 30000ms, 5);
    EXPECT_TRUE(claimed.damaged.empty());
    ASSERT_EQ(claimed.jobs.size(), 1u);
    EXPECT_EQ(claimed.jobs[0].id, "one");
}

TEST_F(Damage, ABadRecordInTheFirstQueueIsQuarantinedAndTheHealthyJobOfTheNextIsClaimed) {
    // The issue's case: `HSET job prio nan` in q1 made a q1,q0 claim take q0's job, fail after
    // it, and leave that job running in no structure, to die as "lease lapsed" unrun.
    auto q1 = keys("q1"), q0 = keys("q0");
    ASSERT_EQ(engine().enqueue_one(q1, "bad", Options().delay(1ms)), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(q0, "good"), EnqueueStatus::created);
    raw().call({"HSET", q1.job("bad"), "prio", "nan"});
    ASSERT_TRUE(
        wait_until([&] { return raw().server_now_ms() > *raw().zscore(q1.scheduled(), "bad"); }));
    auto claimed = engine().claim({q1, q0}, "w1", 30000ms, 5);
    ASSERT_EQ(claimed.jobs.size(), 1u);
    EXPECT_EQ(claimed.jobs[0].id, "good");
    EXPECT_TRUE(claimed.damaged.empty());
    EXPECT_TRUE(raw().zscore(q0.running(), "good"));
    EXPECT_EQ(state_of(q1, "bad"), "dead");
    EXPECT_EQ(raw().hget(q1.job("bad"), "reason"), "corrupt");
    EXPECT_NE(raw().hget(q1.job("bad"), "error")->find("prio 'nan'"), std::string::npos);
    EXPECT_TRUE(raw().zscore(q1.dead(), "bad"));
    EXPECT_EQ(raw().zcard(q1.scheduled()), 0);
}

TEST_F(Damage, SettlingARecordThatCannotBeAJobQuarantinesIt) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"a", "1"}, {"b", "2"}, {"c", "3"}}).size(), 3u);
    auto a = engine().claim(k, "w1", 30000ms, 1).jobs.at(0);
    auto b = engine().claim(k, "w1", 30000ms, 1).jobs.at(0);
    auto c = engine().claim(k, "w1", 30000ms, 1).jobs.at(0);
    raw().call({"HSET", k.job("a"), "attempts", "x"});
    raw().call({"HSET", k.job("b"), "state", "runnning"});
    raw().call({"HSET", k.job("c"), "max", "many"});
    EXPECT_EQ(engine().complete(k, "a", a.token, "done"), Settle::quarantined);
    EXPECT_EQ(raw().hget(k.job("a"), "result"), "done");
    auto failed = engine().fail(k, "b", b.token, 0ms);
    EXPECT_EQ(failed.settle, Settle::quarantined);
    EXPECT_EQ(failed.state, JobState::dead);
    EXPECT_EQ(engine().renew(k, "c", c.token), queue::RenewStatus::quarantined);
    for (std::string id : {"a", "b", "c"}) {
        EXPECT_EQ(state_of(k, id), "dead") << id;
        EXPECT_EQ(raw().hget(k.job(id), "reason"), "corrupt") << id;
        EXPECT_TRUE(raw().zscore(k.dead(), id)) << id;
        EXPECT_FALSE(raw().zscore(k.running(), id)) << id;
        EXPECT_FALSE(raw().hget(k.job(id), "token")) << id;
    }
    // The holder holds it no more: a retry is refused, not quarantined twice.
    EXPECT_EQ(engine().complete(k, "a", a.token, "done"), Settle::refused);
    EXPECT_EQ(raw().llen(k.errors("a")), 1);
}

TEST_F(Damage, AnErrorListOfAnotherTypeIsReplacedWithANoteAndShownAsDamage) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().max_attempts(1)), EnqueueStatus::created);
    auto a = engine().claim(k, "w1", 30000ms, 1).jobs.at(0);
    raw().call({"SET", k.errors("a"), "x"});
    auto info = engine().job_info(k, "a", true);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->damage, k.errors("a") + " holds a string where workq keeps a list");
    EXPECT_TRUE(info->errors.empty());
    EXPECT_EQ(engine().fail(k, "a", a.token, std::nullopt, "it broke").state, JobState::dead);
    auto errors = raw().lrange(k.errors("a"));
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_NE(errors[0].find("held a string, not a list"), std::string::npos);
    EXPECT_NE(errors[1].find("it broke"), std::string::npos);
    info = engine().job_info(k, "a", true);
    EXPECT_TRUE(info->damage.empty());
    EXPECT_EQ(info->errors.size(), 2u);
}

TEST_F(Damage, JobInfoNamesWhatCannotBeRead) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"s", "1"}, {"p", "2"}}).size(), 2u);
    raw().call({"DEL", k.job("s")});
    raw().call({"SET", k.job("s"), "x"});
    raw().call({"HSET", k.job("p"), "prio", "nan"});
    auto s = engine().job_info(k, "s", true);
    ASSERT_TRUE(s);  // found, not unknown: the damage is named
    EXPECT_EQ(s->state, JobState::unknown);
    EXPECT_EQ(s->damage, k.job("s") + " holds a string where workq keeps a hash");
    auto p = engine().job_info(k, "p", true);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->state, JobState::waiting);
    EXPECT_NE(p->damage.find("prio 'nan'"), std::string::npos);
}

TEST_F(Damage, StatsOfADamagedQueueAreRefusedNamingTheKey) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    raw().call({"DEL", k.waiting(0)});
    raw().call({"SET", k.waiting(0), "x"});
    try {
        engine().stats(k);
        FAIL() << "no refusal";
    } catch (const queue::QueueDamagedError& error) {
        EXPECT_EQ(error.key, k.waiting(0));
        EXPECT_EQ(std::string(error.what()),
                  fmt::format("queue q is damaged: {} holds a string where workq keeps a list; "
                              "nothing was changed (see README, \"Damaged data\")",
                              k.waiting(0)));
    }
}

TEST_F(Damage, TheRegistryRefusesADamagedSetAndReplacesABadRegistration) {
    queue::NamespaceKeys n(ns());
    raw().call({"SET", n.worker("w1"), "x"});
    engine().run(queue::heartbeat_call(n, "w1", {{"state", "running"}}));
    EXPECT_EQ(raw().hget(n.worker("w1"), "state"), "running");
    raw().call({"DEL", n.workers()});
    raw().call({"SET", n.workers(), "x"});
    EXPECT_THROW(engine().run(queue::heartbeat_call(n, "w2", {{"state", "running"}})),
                 queue::QueueDamagedError);
    EXPECT_FALSE(raw().exists(n.worker("w2")));
    // A reader lists what it can and says what it could not.
    long long now = 0;
    std::string damage;
    auto workers = queue::list_workers(connection(), n, now, &damage);
    EXPECT_TRUE(workers.empty());
    EXPECT_EQ(damage, n.workers() + " holds another type where workq keeps a zset");
    EXPECT_THROW(queue::list_workers(connection(), n, now), queue::QueueDamagedError);
}

TEST_F(Damage, ABeatRefusesADamagedExitedSetHavingWrittenNothing) {
    // A beat checks the registry's types by its own calls (no TYPE): the exited set by its first
    // write, which fails having written nothing.
    queue::NamespaceKeys n(ns());
    engine().run(queue::heartbeat_call(n, "w1", {{"state", "running"}}));
    auto seen = raw().zscore(n.workers(), "w1");
    raw().call({"SET", n.exited(), "x"});
    EXPECT_THROW(engine().run(queue::heartbeat_call(n, "w2", {{"state", "running"}})),
                 queue::QueueDamagedError);
    EXPECT_FALSE(raw().exists(n.worker("w2")));
    EXPECT_FALSE(raw().zscore(n.workers(), "w2"));
    EXPECT_EQ(raw().zscore(n.workers(), "w1"), seen);
    raw().call({"DEL", n.exited()});
    engine().run(queue::heartbeat_call(n, "w2", {{"state", "running"}}));
    EXPECT_TRUE(raw().zscore(n.workers(), "w2"));
    EXPECT_TRUE(raw().exists(n.worker("w2")));
}

TEST_F(Damage, AReservationOfAnotherTypeIsReplacedAndNeverReleased) {
    queue::NamespaceKeys n(ns());
    for (std::string kind : {"hash", "list", "zset", "set", "string without ttl"}) {
        SCOPED_TRACE(kind);
        std::vector<std::string> ids{"id-" + std::to_string(kind.size())};
        auto key = n.id(ids[0]);
        raw().call({"DEL", key});
        if (kind == "hash") raw().call({"HSET", key, "f", "x"});
        if (kind == "list") raw().call({"RPUSH", key, "x"});
        if (kind == "zset") raw().call({"ZADD", key, "1", "x"});
        if (kind == "set") raw().call({"SADD", key, "x"});
        if (kind == "string without ttl") raw().call({"SET", key, "other"});
        // Not one workq wrote (a reservation always expires): it names no queue, and is
        // not given back by a release of another queue.
        if (kind != "string without ttl") {
            EXPECT_EQ(engine().run(queue::release_id_call(n, ids, "q")).at(0).as_integer(), 0);
            EXPECT_NE(raw().type(key), "string");
        }
        auto held = queue::parse_reserve_id(engine().run(queue::reserve_id_call(n, ids, "q")));
        ASSERT_EQ(held.size(), 1u);
        EXPECT_TRUE(held[0].held);
        EXPECT_EQ(raw().get(key), "q");
        EXPECT_GT(raw().pttl(key), 0);
    }
}

TEST_F(Damage, AScheduleWithNumbersWorkqNeverWritesFiresNothingAndIsNamed) {
    auto k = keys();
    auto now = raw().server_now_ms();
    auto tick = now - 1000;
    engine().run(queue::schedule_define_call(k, schedule_definition("s1", 5), tick));
    raw().call({"HSET", k.schedule("s1"), "prio", "nan"});
    auto due =
        queue::parse_schedule_due(engine().run(queue::schedule_due_call(k, "w1", 10000ms, 100)));
    ASSERT_EQ(due.due.size(), 1u);
    std::vector<std::string> ids{queue::tick_job_id("s1", tick)};
    auto fence = queue::parse_reserve_id(
                     engine().run(queue::reserve_id_call(queue::NamespaceKeys(ns()), ids, "q")))
                     .at(0)
                     .deadline_ms;
    try {
        engine().run(queue::schedule_fire_call(k, due.due[0], tick, {tick, tick + 60000}, fence));
        FAIL() << "no refusal";
    } catch (const queue::QueueDamagedError& error) {
        EXPECT_EQ(error.key, k.schedule("s1"));
        EXPECT_NE(error.damage.find("prio 'nan' that is not a whole number"), std::string::npos)
            << error.damage;
    }
    // Nothing made, the tick still due (workq-status shows it late).
    EXPECT_FALSE(raw().exists(k.job(ids[0])));
    EXPECT_EQ(raw().zscore(k.ticks(), "s1"), tick);
    // Defined again, it fires.
    engine().run(queue::schedule_define_call(k, schedule_definition("s1", 5), tick));
    EXPECT_EQ(raw().hget(k.schedule("s1"), "prio"), "5");

    // A record that is not a hash is no schedule: its tick goes.
    raw().call({"DEL", k.schedule("s1")});
    raw().call({"SET", k.schedule("s1"), "x"});
    due = queue::parse_schedule_due(engine().run(queue::schedule_due_call(k, "w1", 10000ms, 100)));
    EXPECT_TRUE(due.due.empty());
    EXPECT_FALSE(raw().zscore(k.ticks(), "s1"));
}

TEST_F(Damage, ADamagedRateLogSkipsItsQueueInAClaimAndRefusesSetLimits) {
    auto q1 = keys("q1"), q0 = keys("q0");
    engine().run(queue::set_limits_call(q1, queue::RateLimit{10, 60000ms}, std::nullopt));
    ASSERT_EQ(engine().enqueue_one(q1, "one"), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(q0, "zero"), EnqueueStatus::created);
    raw().call({"SET", q1.prefix() + "starts", "x"});
    auto claimed = engine().claim({q1, q0}, "w1", 30000ms, 5);
    ASSERT_EQ(claimed.jobs.size(), 1u);
    EXPECT_EQ(claimed.jobs[0].id, "zero");
    ASSERT_EQ(claimed.damaged.size(), 1u);
    EXPECT_EQ(claimed.damaged[0].what,
              q1.prefix() + "starts holds a string where workq keeps a zset");
    EXPECT_EQ(state_of(q1, "one"), "waiting");
    EXPECT_THROW(engine().run(queue::set_limits_call(q1, queue::RateLimit{}, std::nullopt)),
                 queue::QueueDamagedError);
    EXPECT_THROW(engine().stats(q1), queue::QueueDamagedError);
    // Limits that are not numbers are none: the claim takes every job.
    raw().call({"DEL", q1.prefix() + "starts"});
    raw().call({"HSET", q1.meta(), "limit_rate", "nan", "limit_concurrency", "x"});
    ASSERT_EQ(engine().enqueue_one(q1, "two"), EnqueueStatus::created);
    claimed = engine().claim(q1, "w1", 30000ms, 5);
    EXPECT_EQ(claimed.jobs.size(), 2u);
    EXPECT_EQ(claimed.holds.at(0).kind, queue::HoldKind::none);
    auto stats = engine().stats(q1);
    EXPECT_EQ(stats.limits.rate, 0);
    EXPECT_EQ(stats.limits.concurrency, 0);
}

// ---- Redis Cluster: a slot in migration is not damage (issue 19) ------------------------------

// Two cluster-enabled redis-servers of this test's own on loopback, met as one cluster, the
// first serving every slot; stopped by pid.
class TwoNodeCluster {
  public:
    TwoNodeCluster() {
        auto base = std::filesystem::temp_directory_path() / "workq-cluster.XXXXXX";
        std::string pattern = base.string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        dir_ = pattern;
        start();
        start();
        auto b_port = std::to_string(ports_[1]);
        a().call({"CLUSTER", "ADDSLOTSRANGE", "0", "16383"});
        a().call({"CLUSTER", "MEET", "127.0.0.1", b_port});
        bool met = wait_until(
            [&] {
                for (auto* node : {&a(), &b()}) {
                    auto info = node->command({"CLUSTER", "INFO"});
                    if (!info.is_string() ||
                        info.text.find("cluster_state:ok") == std::string::npos ||
                        info.text.find("cluster_known_nodes:2") == std::string::npos)
                        return false;
                }
                return true;
            },
            20000ms, 20ms);
        if (!met) throw std::runtime_error("the two cluster nodes did not meet (see " + dir_ + ")");
    }
    ~TwoNodeCluster() {
        connections_.clear();
        for (auto pid : pids_) {
            ::kill(pid, SIGTERM);
            ::waitpid(pid, nullptr, 0);
        }
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    redis::Connection& a() { return connections_.at(0); }
    redis::Connection& b() { return connections_.at(1); }
    int port(int i) const { return ports_.at(static_cast<std::size_t>(i)); }

  private:
    static int free_port() {
        for (int attempt = 0; attempt < 50; ++attempt) {
            int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in address{};
            address.sin_family = AF_INET;
            address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            socklen_t length = sizeof address;
            int port = -1;
            if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0)
                port = ntohs(address.sin_port);
            ::close(fd);
            if (port > 0 && port < 55000) return port;  // its bus port (+10000) fits too
        }
        throw std::runtime_error("no free port");
    }
    void start() {
        for (int attempt = 0;; ++attempt) {
            int port = free_port();
            auto conf = fmt::format("{}/nodes-{}.conf", dir_, port);
            auto log = fmt::format("{}/redis-{}.log", dir_, port);
            pid_t parent = ::getpid();
            pid_t pid = ::fork();
            if (pid < 0) throw std::runtime_error("fork failed");
            if (pid == 0) {
                ::prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (::getppid() != parent) ::_exit(1);
                auto port_text = std::to_string(port);
                ::execlp("redis-server", "redis-server", "--port", port_text.c_str(), "--bind",
                         "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file",
                         conf.c_str(), "--save", "", "--appendonly", "no", "--dir", dir_.c_str(),
                         "--logfile", log.c_str(), static_cast<char*>(nullptr));
                ::_exit(127);
            }
            redis::Endpoint endpoint = redis::parse_url(fmt::format("redis://127.0.0.1:{}", port));
            std::optional<redis::Connection> connection;
            wait_until(
                [&] {
                    try {
                        connection.emplace(redis::Connection::open_server(endpoint));
                        return connection->command({"PING"}).is_string();
                    } catch (const std::exception&) {
                        connection.reset();
                        return false;
                    }
                },
                5000ms, 10ms);
            if (connection) {
                pids_.push_back(pid);
                ports_.push_back(port);
                connections_.push_back(std::move(*connection));
                return;
            }
            ::kill(pid, SIGTERM);
            ::waitpid(pid, nullptr, 0);
            if (attempt == 4) throw std::runtime_error("a cluster node did not start: " + log);
        }
    }
    std::string dir_;
    std::vector<pid_t> pids_;
    std::vector<int> ports_;
    std::vector<redis::Connection> connections_;
};

// What a node holds of the queue's slot: every key, its type, value and whether it expires.
std::map<std::string, std::string> dump_slot(redis::Connection& node, int slot) {
    std::map<std::string, std::string> out;
    auto keys = node.command({"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "100000"});
    for (const auto& key : keys.as_array()) {
        const auto& name = key.as_string();
        // The target of a migration serves a key of the slot only after ASKING.
        node.call({"ASKING"});
        auto dump = node.command({"DUMP", name});
        node.call({"ASKING"});
        auto ttl = node.command({"PTTL", name});
        out[name] = (dump.is_string() ? dump.text : std::string("?")) + "|" +
                    (ttl.as_integer() < 0 ? "none" : "ttl");
    }
    return out;
}

// A queue's slot half moved to another master (MIGRATING on the source, IMPORTING on the
// target, every other key MIGRATEd): every script, sent to the source as a client that does
// not know of the migration would, ends with TRYAGAIN having changed nothing on either node,
// and never takes the keys it cannot reach for damage (no WORKQ_DAMAGED, no record
// quarantined). Sent to the target after ASKING, the same.
TEST_F(Damage, AScriptMeetingASlotInMigrationEndsWithTryAgainHavingChangedNothing) {
    std::optional<TwoNodeCluster> cluster;
    try {
        cluster.emplace();
    } catch (const std::exception& error) {
        GTEST_SKIP() << "no cluster of two redis-servers: " << error.what();
    }
    auto& source = cluster->a();
    auto& target = cluster->b();
    auto original = build("template");
    auto healthy = keys("healthy");
    ASSERT_EQ(engine().enqueue_one(healthy, "h"), EnqueueStatus::created);
    // Every key of the scene and of the healthy queue, onto the source node.
    for (const auto* prefix : {&original.k.prefix(), &healthy.prefix()}) {
        auto reply = raw().call({"EVAL", R"(
            local out, cursor = {}, '0'
            repeat
                local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1] .. '*', 'COUNT', 1000)
                cursor = page[1]
                for _, key in ipairs(page[2]) do
                    local ttl = redis.call('PTTL', key)
                    out[#out + 1] = {key, tostring(ttl > 0 and ttl or 0), redis.call('DUMP', key)}
                end
            until cursor == '0'
            return out)",
                                 "0", *prefix});
        for (const auto& item : reply.as_array()) {
            const auto& f = item.as_array();
            ASSERT_FALSE(
                source.command({"RESTORE", f[0].as_string(), f[1].as_string(), f[2].as_string()})
                    .is_error());
        }
    }
    int slot = redis::key_slot(original.k.meta());
    auto slot_text = std::to_string(slot);
    auto source_id = source.call({"CLUSTER", "MYID"}).as_string();
    auto target_id = target.call({"CLUSTER", "MYID"}).as_string();
    target.call({"CLUSTER", "SETSLOT", slot_text, "IMPORTING", source_id});
    source.call({"CLUSTER", "SETSLOT", slot_text, "MIGRATING", target_id});
    // Every other key moves; the meta stays (a client that knows nothing routes to the source).
    auto keys_here = source.call({"CLUSTER", "GETKEYSINSLOT", slot_text, "100000"}).as_array();
    ASSERT_GT(keys_here.size(), 10u);
    int moved = 0;
    for (std::size_t i = 0; i < keys_here.size(); ++i) {
        const auto& key = keys_here[i].as_string();
        if (i % 2 == 1 || key == original.k.meta()) continue;
        auto reply = source.command(
            {"MIGRATE", "127.0.0.1", std::to_string(cluster->port(1)), key, "0", "5000"});
        ASSERT_FALSE(reply.is_error()) << reply.text;
        ++moved;
    }
    ASSERT_GT(moved, 5);
    // Loaded beforehand: an EVALSHA answered NOSCRIPT (an FCALL answered "not found") would be
    // sent again without ASKING.
    for (auto* node : {&source, &target}) {
        auto loaded = node->command({"FUNCTION", "LOAD", queue::embedded_library()});
        ASSERT_TRUE(redis::library_loaded(loaded)) << loaded.text;
        for (const auto& script : queue::embedded_scripts())
            ASSERT_FALSE(node->command({"SCRIPT", "LOAD", script.text}).is_error());
    }
    auto before_source = dump_slot(source, slot);
    auto before_target = dump_slot(target, slot);
    ASSERT_FALSE(before_target.empty());
    int tried = 0;
    for (bool asking : {false, true}) {
        auto& node = asking ? target : source;
        Engine engine_here(node);
        for (const auto& operation : operations()) {
            SCOPED_TRACE(operation.name + (asking ? " on the target" : " on the source"));
            // A claim over several queues is for single servers (CROSSSLOT on a cluster).
            bool several = operation.name.find("several") != std::string::npos ||
                           operation.name.find("queues") != std::string::npos;
            if (asking) node.call({"ASKING"});
            try {
                operation.run(engine_here, original, healthy);
                if (!several) ADD_FAILURE() << "ran on a slot in migration";
            } catch (const queue::QueueDamagedError& error) {
                ADD_FAILURE() << "taken for damage: " << error.what();
            } catch (const std::exception& error) {
                std::string what = error.what();
                // On the target, only the first call follows an ASKING: a later one (an
                // operation of several calls) is answered MOVED, as a client would be.
                if (!several) {
                    EXPECT_TRUE(what.find("TRYAGAIN") != std::string::npos ||
                                (asking && what.find("MOVED") != std::string::npos))
                        << what;
                }
                EXPECT_EQ(what.find("WORKQ_DAMAGED"), std::string::npos) << what;
            }
            ++tried;
            EXPECT_EQ(dump_slot(source, slot), before_source);
            EXPECT_EQ(dump_slot(target, slot), before_target);
        }
    }
    EXPECT_GT(tried, 20);
}

}  // namespace
}  // namespace workq::test
