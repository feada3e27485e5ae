// Every transition of the queue engine (lib/lua/*.lua through lib/queue/transitions) and its
// refusals, against a real redis-server. Outcomes are checked on the raw keys with plain Redis
// commands (tests/unit/redis_fixture.hpp), not through the library's own look-ups.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "queue/client.hpp"
#include "queue/transitions.hpp"
#include "redis_fixture.hpp"

namespace workq::test {
namespace {

using queue::CancelStatus;
using queue::ClaimedJob;
using queue::EnqueueOptions;
using queue::EnqueueStatus;
using queue::JobState;
using queue::PurgeWhich;
using queue::RenewStatus;
using queue::Settle;

class Transitions : public RedisTest {
  protected:
    // Claims exactly one job (throws when the claim returns another number of jobs).
    ClaimedJob take(const queue::QueueKeys& k, std::string_view worker = "w1",
                    Millis lease = 30000ms) {
        auto result = engine().claim(k, worker, lease, 1);
        if (result.jobs.size() != 1)
            throw std::runtime_error("expected to claim one job, got " +
                                     std::to_string(result.jobs.size()));
        return result.jobs[0];
    }

    std::string state(const queue::QueueKeys& k, const std::string& id) {
        return raw().hget(k.job(id), "state").value_or("<no record>");
    }

    // Waits (bounded) until a reap of `k` takes back `expected` jobs in total.
    bool reap_until(const queue::QueueKeys& k, long long expected) {
        long long total = 0;
        return wait_until([&] {
            total += engine().reap(k);
            return total >= expected;
        });
    }

    // Waits until the server's clock passes `ms`.
    bool server_time_passes(long long ms) {
        return wait_until([&] { return raw().server_now_ms() > ms; });
    }

    std::vector<std::string> error_reasons(const queue::QueueKeys& k, const std::string& id) {
        std::vector<std::string> reasons;
        for (const auto& entry : raw().lrange(k.errors(id))) {
            auto at = entry.find("\"reason\":\"");
            if (at == std::string::npos) {
                reasons.push_back("?");
                continue;
            }
            at += 10;
            reasons.push_back(entry.substr(at, entry.find('"', at) - at));
        }
        return reasons;
    }

    // Puts job `id` (max attempts 1) in the dead letters by a permanent failure.
    void make_dead(const queue::QueueKeys& k, const std::string& id) {
        ASSERT_EQ(engine().enqueue_one(k, id, Options().max_attempts(1)), EnqueueStatus::created);
        auto job = take(k);
        ASSERT_EQ(job.id, id);
        ASSERT_EQ(engine().fail(k, id, job.token, std::nullopt).state, JobState::dead);
    }
};

// --- enqueue -------------------------------------------------------------------------------------

TEST_F(Transitions, EnqueueBatchCreatesWaitingJobsInOrderWithExactPayloads) {
    auto k = keys();
    std::vector<std::pair<std::string, std::string>> jobs;
    std::vector<std::string> ids;
    for (int i = 0; i < 50; ++i) {
        std::string payload = "job " + std::to_string(i);
        payload += std::string("\0\n\xff tail", 8);
        jobs.emplace_back("j" + std::to_string(100 + i), payload);
        ids.push_back(jobs.back().first);
    }
    auto results = engine().enqueue(k, jobs);
    ASSERT_EQ(results.size(), jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        EXPECT_EQ(results[i].status, EnqueueStatus::created);
        EXPECT_EQ(results[i].id, jobs[i].first);
        EXPECT_EQ(raw().hget(k.job(jobs[i].first), "payload"), jobs[i].second);
        EXPECT_EQ(state(k, jobs[i].first), "waiting");
        // A fresh record stores neither attempts (absent: 0) nor ready (absent: created).
        EXPECT_EQ(raw().hget(k.job(jobs[i].first), "attempts"), std::nullopt);
        EXPECT_EQ(raw().hget(k.job(jobs[i].first), "ready"), std::nullopt);
        EXPECT_TRUE(raw().hget(k.job(jobs[i].first), "created"));
        EXPECT_EQ(raw().hget(k.job(jobs[i].first), "max"), "10");  // the default
    }
    EXPECT_EQ(raw().lrange(k.waiting(0)), ids);
    EXPECT_EQ(raw().zrange(k.priorities()), std::vector<std::string>{"0"});
    EXPECT_EQ(raw().hget(k.meta(), "version"), "1");  // recorded on first write
    EXPECT_EQ(raw().llen(k.wake()), 1);               // one wake-up for idle workers

    // Claims hand them out in the same order, payload bytes intact.
    auto claimed = engine().claim(k, "w1", 30000ms, 50);
    ASSERT_EQ(claimed.jobs.size(), 50u);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        EXPECT_EQ(claimed.jobs[i].id, jobs[i].first);
        EXPECT_EQ(claimed.jobs[i].payload, jobs[i].second);
    }
}

TEST_F(Transitions, EnqueueRecordsPriorityMaxAttemptsAndTimeout) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().priority(7).max_attempts(3).timeout(1500ms)),
              EnqueueStatus::created);
    EXPECT_EQ(raw().hget(k.job("a"), "prio"), "7");
    EXPECT_EQ(raw().hget(k.job("a"), "max"), "3");
    EXPECT_EQ(raw().hget(k.job("a"), "timeout"), "1500");
    EXPECT_EQ(raw().lrange(k.waiting(7)), std::vector<std::string>{"a"});
    auto job = take(k);
    EXPECT_EQ(job.id, "a");
    EXPECT_EQ(job.attempt, 1);
    EXPECT_EQ(job.max_attempts, 3);
    EXPECT_EQ(job.timeout, Millis(1500));

    // Without a timeout the worker's applies: the claim says so with nullopt.
    ASSERT_EQ(engine().enqueue_one(k, "b"), EnqueueStatus::created);
    EXPECT_FALSE(raw().hget(k.job("b"), "timeout"));
    EXPECT_EQ(take(k).timeout, std::nullopt);
}

TEST_F(Transitions, EnqueueWithDelayIsScheduledByServerTime) {
    auto k = keys();
    auto before = raw().server_now_ms();
    ASSERT_EQ(engine().enqueue_one(k, "d", Options().delay(60000ms)), EnqueueStatus::created);
    auto after = raw().server_now_ms();
    auto due = raw().zscore(k.scheduled(), "d");
    ASSERT_TRUE(due);
    EXPECT_GE(*due, before + 60000);
    EXPECT_LE(*due, after + 60000);
    EXPECT_EQ(state(k, "d"), "scheduled");
    EXPECT_EQ(raw().zcard(k.priorities()), 0);

    // Not claimable yet; the claim says how long until it is.
    auto claimed = engine().claim(k);
    EXPECT_TRUE(claimed.jobs.empty());
    ASSERT_TRUE(claimed.next_due);
    EXPECT_GT(claimed.next_due->count(), 50000);
    EXPECT_LE(claimed.next_due->count(), 60000);
}

TEST_F(Transitions, EnqueueAtAbsoluteServerTime) {
    auto k = keys();
    auto now = raw().server_now_ms();
    ASSERT_EQ(engine().enqueue_one(k, "later", Options().due_at_ms(now + 120000)),
              EnqueueStatus::created);
    EXPECT_EQ(raw().zscore(k.scheduled(), "later"), now + 120000);
    EXPECT_EQ(state(k, "later"), "scheduled");

    // --at wins over --delay.
    ASSERT_EQ(engine().enqueue_one(k, "both", Options().delay(1000ms).due_at_ms(now + 90000)),
              EnqueueStatus::created);
    EXPECT_EQ(raw().zscore(k.scheduled(), "both"), now + 90000);

    // A time already past: waiting at once.
    ASSERT_EQ(engine().enqueue_one(k, "past", Options().due_at_ms(now - 5000)),
              EnqueueStatus::created);
    EXPECT_EQ(state(k, "past"), "waiting");
    EXPECT_FALSE(raw().zscore(k.scheduled(), "past"));
    EXPECT_EQ(take(k).id, "past");
}

TEST_F(Transitions, DelayedJobBecomesClaimableWhenDue) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "soon", Options().delay(300ms)), EnqueueStatus::created);
    auto due = *raw().zscore(k.scheduled(), "soon");
    ASSERT_TRUE(engine().claim(k).jobs.empty());

    std::optional<ClaimedJob> got;
    ASSERT_TRUE(wait_until([&] {
        auto claimed = engine().claim(k);
        if (!claimed.jobs.empty()) got = claimed.jobs[0];
        return got.has_value();
    }));
    EXPECT_EQ(got->id, "soon");
    EXPECT_GE(raw().server_now_ms(), due);  // not before its time, by the server's clock
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
    EXPECT_EQ(state(k, "soon"), "running");
}

TEST_F(Transitions, UniqueKeyIsHeldWhileTheJobIsActive) {
    auto k = keys();
    // Scheduled holds it.
    ASSERT_EQ(engine().enqueue_one(k, "s1", Options().delay(60000ms).unique_key("nightly")),
              EnqueueStatus::created);
    auto again = engine().enqueue(k, {{"s2", "x"}}, Options().unique_key("nightly"));
    EXPECT_EQ(again[0].status, EnqueueStatus::existing);
    EXPECT_EQ(again[0].id, "s1");
    EXPECT_FALSE(raw().exists(k.job("s2")));
    EXPECT_EQ(raw().get(k.unique("nightly")), "s1");

    // Waiting holds it; two jobs with one key in one batch make one job.
    auto batch = engine().enqueue(k, {{"w1", "x"}, {"w2", "y"}}, Options().unique_key("report"));
    EXPECT_EQ(batch[0].status, EnqueueStatus::created);
    EXPECT_EQ(batch[1].status, EnqueueStatus::existing);
    EXPECT_EQ(batch[1].id, "w1");
    EXPECT_FALSE(raw().exists(k.job("w2")));

    // Running holds it.
    auto job = take(k);
    ASSERT_EQ(job.id, "w1");
    auto running = engine().enqueue(k, {{"w3", "x"}}, Options().unique_key("report"));
    EXPECT_EQ(running[0].status, EnqueueStatus::existing);
    EXPECT_EQ(running[0].id, "w1");
    EXPECT_EQ(raw().llen(k.waiting(0)), 0);
}

TEST_F(Transitions, UniqueKeyIsReleasedWhenTheJobSucceedsDiesOrIsCancelled) {
    auto k = keys();
    EnqueueOptions unique = Options().max_attempts(1).unique_key("u");

    ASSERT_EQ(engine().enqueue_one(k, "a", unique), EnqueueStatus::created);
    auto a = take(k);
    ASSERT_EQ(engine().complete(k, "a", a.token), Settle::done);
    EXPECT_FALSE(raw().exists(k.unique("u")));

    ASSERT_EQ(engine().enqueue_one(k, "b", unique), EnqueueStatus::created);
    auto b = take(k);
    ASSERT_EQ(engine().fail(k, "b", b.token, 1000ms).state, JobState::dead);  // attempts spent
    EXPECT_FALSE(raw().exists(k.unique("u")));

    ASSERT_EQ(engine().enqueue_one(k, "c", unique), EnqueueStatus::created);
    ASSERT_EQ(engine().cancel(k, {"c"})[0].status, CancelStatus::cancelled);
    EXPECT_FALSE(raw().exists(k.unique("u")));

    // Dead by a lapsed lease, too.
    ASSERT_EQ(engine().enqueue_one(k, "d", unique), EnqueueStatus::created);
    take(k, "w1", 1ms);
    ASSERT_TRUE(reap_until(k, 1));
    EXPECT_EQ(state(k, "d"), "dead");
    EXPECT_FALSE(raw().exists(k.unique("u")));

    ASSERT_EQ(engine().enqueue_one(k, "e", unique), EnqueueStatus::created);
    EXPECT_EQ(raw().get(k.unique("u")), "e");
}

// Issue 23, item 1: claim marked its jobs running, then put them in <p>running with one
// ZADD of 2 x N values; Lua refuses to unpack ~8,000, so at -c 4000 the script failed after
// its writes and every claimed job was stranded (running, in no set the reaper scans). Every
// list that grows with a batch is now unpacked in chunks: the largest -c the worker accepts
// (10,000) claims, renews, settles and is reaped in one call each.
TEST_F(Transitions, BatchesAsLargeAsTheLargestConcurrencyClaimRenewSettleAndReap) {
    constexpr std::size_t largest_concurrency = 10000;  // tools/work/settings.cpp
    auto k = keys();
    std::vector<std::pair<std::string, std::string>> jobs;
    for (std::size_t i = 0; i < largest_concurrency; ++i)
        jobs.emplace_back("j" + std::to_string(i), "p");
    engine().enqueue(k, jobs);
    auto claimed = engine().claim(k, "w1", 30000ms, largest_concurrency);
    ASSERT_EQ(claimed.jobs.size(), largest_concurrency);
    EXPECT_EQ(raw().zcard(k.running()), static_cast<long long>(largest_concurrency));
    EXPECT_EQ(raw().llen(k.waiting(0)), 0);

    std::vector<queue::HeldJob> held;
    std::vector<queue::Completion> done;
    for (const auto& job : claimed.jobs) {
        held.push_back({job.id, job.token});
        done.push_back({job.id, job.token, "ok"});
    }
    auto renewed = queue::parse_renew(engine().run(queue::renew_call(k, 60000ms, held)));
    ASSERT_EQ(renewed.size(), largest_concurrency);
    EXPECT_EQ(std::count(renewed.begin(), renewed.end(), RenewStatus::renewed),
              static_cast<long>(largest_concurrency));
    // Half settle in one batch; the other half's leases lapse and the reaper takes them back.
    std::span<const queue::Completion> half(done.data(), largest_concurrency / 2);
    std::span<const queue::HeldJob> rest(held.data() + largest_concurrency / 2,
                                         largest_concurrency / 2);
    auto settled =
        queue::parse_complete(engine().run(queue::complete_call(k, half, Engine::long_ttl)));
    EXPECT_EQ(std::count(settled.begin(), settled.end(), Settle::done),
              static_cast<long>(largest_concurrency / 2));
    EXPECT_EQ(raw().zcard(k.running()), static_cast<long long>(largest_concurrency / 2));
    engine().run(queue::renew_call(k, 1ms, rest));
    ASSERT_TRUE(server_time_passes(raw().server_now_ms() + 2));
    EXPECT_EQ(engine().reap(k, largest_concurrency),
              static_cast<long long>(largest_concurrency / 2));
    EXPECT_EQ(raw().zcard(k.running()), 0);
    EXPECT_EQ(raw().llen(k.waiting(0)), static_cast<long long>(largest_concurrency / 2));
}

// Issue 23, item 5: a persistent handler's 1 MB error was stored whole, 50 times per job.
// Every stored error is its last 4 KiB: cut by fail_call, and by the script whatever it is sent.
TEST_F(Transitions, StoredErrorsAreCappedAtTheirLastFourKiB) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "e", Options().max_attempts(3)), EnqueueStatus::created);
    std::string huge = "first" + std::string(1000000, 'x') + "\xc3\xa9last";
    auto job = take(k);
    auto call = queue::fail_call(k, "e", job.token, huge, "exit", 0ms, Engine::long_ttl);
    EXPECT_LE(call.args[3].size(), queue::max_error_bytes);
    call.args[3] = huge;  // as an older or foreign client would send it
    engine().run(call);
    auto stored = raw().hget(k.job("e"), "error").value_or("");
    EXPECT_EQ(stored.size(), queue::max_error_bytes);
    EXPECT_TRUE(stored.ends_with("\xc3\xa9last"));
    auto entries = raw().lrange(k.errors("e"));
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_LT(entries[0].size(), queue::max_error_bytes + 200);

    // A cut inside a UTF-8 character starts on the next one: 2,500 two-byte characters and
    // one more byte put the cut on a second byte.
    std::string accents;
    for (int i = 0; i < 2500; ++i)
        accents += "\xc3\xa9";
    accents += "!";
    ASSERT_TRUE(wait_until([&] {
        engine().reap(k);
        auto claimed = engine().claim(k);
        if (claimed.jobs.empty()) return false;
        job = claimed.jobs[0];
        return true;
    }));
    call = queue::fail_call(k, "e", job.token, "", "exit", 0ms, Engine::long_ttl);
    call.args[3] = accents;
    engine().run(call);
    stored = raw().hget(k.job("e"), "error").value_or("");
    EXPECT_EQ(stored.size(), queue::max_error_bytes - 1);
    EXPECT_EQ(static_cast<unsigned char>(stored[0]), 0xc3);
}

// The namespace reservation of caller ids (issue 23, item 9): reserved first, made second.
TEST_F(Transitions, CallerIdReservationNamesOneQueueAndFencesTheEnqueue) {
    queue::NamespaceKeys ns_keys(ns());
    std::vector<std::string> ids{"inv-1"};
    auto reserve = [&](std::string_view queue) {
        return queue::parse_reserve_id(engine().run(queue::reserve_id_call(ns_keys, ids, queue)))
            .at(0);
    };
    auto a = reserve("a");
    ASSERT_TRUE(a.held);
    EXPECT_GT(a.deadline_ms, raw().server_now_ms());
    EXPECT_EQ(raw().get(ns_keys.id("inv-1")), "a");
    EXPECT_GT(raw().pttl(ns_keys.id("inv-1")), 0);
    // Another queue is told who holds it and for how long; the same queue renews it.
    auto b = reserve("b");
    EXPECT_FALSE(b.held);
    EXPECT_EQ(b.holder, "a");
    EXPECT_GT(b.holder_left_ms, 0);
    EXPECT_TRUE(reserve("a").held);
    // Releasing is for its holder only.
    engine().run(queue::release_id_call(ns_keys, ids, "b"));
    EXPECT_EQ(raw().get(ns_keys.id("inv-1")), "a");
    engine().run(queue::release_id_call(ns_keys, ids, "a"));
    EXPECT_FALSE(raw().exists(ns_keys.id("inv-1")));
    // A value workq did not write there (no time to live, or another type) is replaced.
    raw().call({"SET", ns_keys.id("inv-1"), "b"});
    EXPECT_TRUE(reserve("a").held);
    raw().call({"DEL", ns_keys.id("inv-1")});
    raw().call({"HSET", ns_keys.id("inv-1"), "x", "y"});
    EXPECT_TRUE(reserve("a").held);

    // The enqueue makes nothing once the fence (the reservation's deadline, less a margin for
    // clocks) has passed: a caller stalled past it must reserve again.
    auto k = keys("a");
    EnqueueOptions late = Options().caller_ids(true);
    late.id_fence_ms = raw().server_now_ms();
    auto results = engine().enqueue(k, {{"inv-1", "x"}}, late);
    EXPECT_EQ(results[0].status, EnqueueStatus::reservation_lapsed);
    EXPECT_FALSE(raw().exists(k.job("inv-1")));
    EnqueueOptions in_time = Options().caller_ids(true);
    in_time.id_fence_ms = reserve("a").deadline_ms;
    EXPECT_EQ(engine().enqueue(k, {{"inv-1", "x"}}, in_time)[0].status, EnqueueStatus::created);
    // An existing job is reported as such even past the fence.
    EXPECT_EQ(engine().enqueue(k, {{"inv-1", "y"}}, late)[0].status, EnqueueStatus::existing);
}

TEST_F(Transitions, EnqueueWithIdFindsTheJobInAnyQueueAndCompletesAHalfDoneOne) {
    queue::NamespaceKeys ns_keys(ns());
    auto a = keys("a"), b = keys("b");
    EnqueueOptions options = Options().max_attempts(1);
    // Made in a; asked again for b: nothing is made, a is named, b's reservation given back.
    auto first = queue::enqueue_with_id(connection(), ns_keys, a, options, {"id-1", "one"});
    EXPECT_EQ(first.status, EnqueueStatus::created);
    EXPECT_EQ(first.queue, "a");
    raw().call({"DEL", ns_keys.id("id-1")});  // as if the reservation had lapsed
    auto second = queue::enqueue_with_id(connection(), ns_keys, b, options, {"id-1", "two"});
    EXPECT_EQ(second.status, EnqueueStatus::existing);
    EXPECT_EQ(second.queue, "a");
    EXPECT_FALSE(raw().exists(b.job("id-1")));
    EXPECT_FALSE(raw().exists(ns_keys.id("id-1")));
    EXPECT_EQ(raw().hget(a.job("id-1"), "payload"), "one");

    // A caller died between its reservation (for a) and its job: a re-run for a completes it.
    std::vector<std::string> ids{"id-2"};
    engine().run(queue::reserve_id_call(ns_keys, ids, "a"));
    auto rerun = queue::enqueue_with_id(connection(), ns_keys, a, options, {"id-2", "p"});
    EXPECT_EQ(rerun.status, EnqueueStatus::created);
    EXPECT_EQ(rerun.queue, "a");

    // A caller for b waits for a's maker, and names a once the job is there.
    ids = {"id-3"};
    auto held = queue::parse_reserve_id(engine().run(queue::reserve_id_call(ns_keys, ids, "a")));
    queue::PlacedJob waited;
    std::thread caller([&] {
        auto other = connect_test_server();
        waited = queue::enqueue_with_id(other, ns_keys, b, options, {"id-3", "from b"});
    });
    // The outcome is the same whenever a's job comes; made once the caller polls for it (its
    // connection's last command an EXISTS), the test goes through the waiting path.
    wait_until([&] {
        return raw().call({"CLIENT", "LIST"}).as_string().find("cmd=exists") != std::string::npos;
    });
    EnqueueOptions fenced = Options().caller_ids(true);
    fenced.id_fence_ms = held.at(0).deadline_ms;
    engine().enqueue(a, {{"id-3", "from a"}}, fenced);
    caller.join();
    EXPECT_EQ(waited.status, EnqueueStatus::existing);
    EXPECT_EQ(waited.queue, "a");
    EXPECT_FALSE(raw().exists(b.job("id-3")));

    // A maker that died holding the reservation: the caller for b makes the job once it lapses.
    ids = {"id-4"};
    engine().run(queue::reserve_id_call(ns_keys, ids, "a"));
    raw().call({"PEXPIRE", ns_keys.id("id-4"), "300"});
    auto after = queue::enqueue_with_id(connection(), ns_keys, b, options, {"id-4", "b"});
    EXPECT_EQ(after.status, EnqueueStatus::created);
    EXPECT_EQ(after.queue, "b");
    EXPECT_EQ(raw().get(ns_keys.id("id-4")), "b");
}

TEST_F(Transitions, CallerIdThatExistsInAnyStateMakesNoJob) {
    auto k = keys();
    EnqueueOptions caller = Options().max_attempts(1).caller_ids(true);
    auto again = [&](const std::string& id) {
        auto results = engine().enqueue(k, {{id, "second"}}, caller);
        EXPECT_EQ(results[0].status, EnqueueStatus::existing) << id;
        EXPECT_EQ(results[0].id, id);
        EXPECT_EQ(raw().hget(k.job(id), "payload"), "first") << id;
    };
    auto create = [&](const std::string& id, EnqueueOptions options = {}) {
        options.max_attempts = 1;
        options.caller_ids = true;
        auto results = engine().enqueue(k, {{id, "first"}}, options);
        ASSERT_EQ(results[0].status, EnqueueStatus::created) << id;
    };

    create("waiting-1");
    again("waiting-1");
    EXPECT_EQ(raw().lrange(k.waiting(0)), std::vector<std::string>{"waiting-1"});

    create("scheduled-1", Options().delay(60000ms));
    again("scheduled-1");
    EXPECT_EQ(state(k, "scheduled-1"), "scheduled");

    auto job = take(k);  // waiting-1 runs
    again("waiting-1");
    EXPECT_EQ(state(k, "waiting-1"), "running");
    ASSERT_EQ(engine().complete(k, "waiting-1", job.token), Settle::done);
    again("waiting-1");
    EXPECT_EQ(state(k, "waiting-1"), "succeeded");

    create("dead-1");
    job = take(k);
    ASSERT_EQ(engine().fail(k, "dead-1", job.token, std::nullopt).state, JobState::dead);
    again("dead-1");
    EXPECT_EQ(state(k, "dead-1"), "dead");

    create("cancelled-1");
    ASSERT_EQ(engine().cancel(k, {"cancelled-1"})[0].status, CancelStatus::cancelled);
    again("cancelled-1");
    EXPECT_EQ(state(k, "cancelled-1"), "cancelled");

    EXPECT_EQ(raw().llen(k.waiting(0)), 0);  // none of the repeats made a job

    // A generated id that exists is a collision: the caller retries with another id.
    auto collided = engine().enqueue(k, {{"dead-1", "x"}});
    EXPECT_EQ(collided[0].status, EnqueueStatus::collision);
    EXPECT_EQ(raw().hget(k.job("dead-1"), "payload"), "first");
}

// --- claim ---------------------------------------------------------------------------------------

TEST_F(Transitions, ClaimTakesHighestPriorityFirstThenOldest) {
    auto k = keys();
    struct Spec {
        const char* id;
        long long priority;
    };
    for (auto spec : {Spec{"a", 0}, Spec{"b", 5}, Spec{"c", 0}, Spec{"d", 5}, Spec{"e", -3},
                      Spec{"f", 1000000}, Spec{"g", -1000000}, Spec{"h", 0}})
        ASSERT_EQ(engine().enqueue_one(k, spec.id, Options().priority(spec.priority)),
                  EnqueueStatus::created);
    const std::vector<std::string> expected{"f", "b", "d", "a", "c", "h", "e", "g"};
    // The data model keeps them in that order: one list per priority, oldest at the head.
    EXPECT_EQ(raw().waiting_in_claim_order(k), expected);
    std::vector<std::string> order;
    for (int i = 0; i < 8; ++i)
        order.push_back(take(k).id);
    EXPECT_EQ(order, expected);
    EXPECT_TRUE(engine().claim(k).jobs.empty());
    EXPECT_EQ(raw().zcard(k.priorities()), 0);  // no empty priority left behind
}

TEST_F(Transitions, ClaimServesSeveralQueuesInStrictOrder) {
    auto q1 = keys("q1");
    auto q2 = keys("q2");
    ASSERT_EQ(engine().enqueue_one(q1, "low-queue-high-prio", Options().priority(100)),
              EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(q2, "x1"), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(q2, "x2"), EnqueueStatus::created);

    // q2 first: both of its jobs come before q1's, whatever q1's priority.
    auto claimed = engine().claim({q2, q1}, "w1", 30000ms, 2);
    ASSERT_EQ(claimed.jobs.size(), 2u);
    EXPECT_EQ(claimed.jobs[0].id, "x1");
    EXPECT_EQ(claimed.jobs[0].queue_index, 0u);
    EXPECT_EQ(claimed.jobs[1].id, "x2");

    // Then q1's, from the second queue of the list.
    claimed = engine().claim({q2, q1}, "w1", 30000ms, 5);
    ASSERT_EQ(claimed.jobs.size(), 1u);
    EXPECT_EQ(claimed.jobs[0].id, "low-queue-high-prio");
    EXPECT_EQ(claimed.jobs[0].queue_index, 1u);
    EXPECT_EQ(raw().hget(q1.job("low-queue-high-prio"), "state"), "running");
    EXPECT_TRUE(raw().zscore(q1.running(), "low-queue-high-prio"));
    EXPECT_FALSE(raw().zscore(q2.running(), "low-queue-high-prio"));
}

TEST_F(Transitions, PausedQueueIsSkippedUntilResumed) {
    auto q1 = keys("q1");
    auto q2 = keys("q2");
    EXPECT_EQ(engine().set_paused(q1, true), 1);
    EXPECT_EQ(engine().set_paused(q1, true), 0);  // already paused
    EXPECT_EQ(raw().hget(q1.meta(), "paused"), "1");

    // Enqueue still works on a paused queue.
    ASSERT_EQ(engine().enqueue_one(q1, "p1"), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(q2, "o1"), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(q2, "o2"), EnqueueStatus::created);

    auto claimed = engine().claim({q1, q2}, "w1", 30000ms, 1);
    ASSERT_EQ(claimed.jobs.size(), 1u);
    EXPECT_EQ(claimed.jobs[0].id, "o1");
    EXPECT_TRUE(engine().claim(q1).jobs.empty());
    EXPECT_EQ(raw().lrange(q1.waiting(0)), std::vector<std::string>{"p1"});
    EXPECT_TRUE(engine().stats(q1).paused);

    raw().call({"DEL", q1.wake()});
    EXPECT_EQ(engine().set_paused(q1, false), 1);
    EXPECT_EQ(engine().set_paused(q1, false), 0);
    EXPECT_GE(raw().llen(q1.wake()), 1);  // resuming wakes idle workers
    claimed = engine().claim({q1, q2}, "w1", 30000ms, 1);
    ASSERT_EQ(claimed.jobs.size(), 1u);
    EXPECT_EQ(claimed.jobs[0].id, "p1");
}

TEST_F(Transitions, PausedQueueDoesNotPromoteOrReportScheduledJobs) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "s", Options().delay(200ms)), EnqueueStatus::created);
    ASSERT_EQ(engine().set_paused(k, true), 1);
    ASSERT_TRUE(server_time_passes(*raw().zscore(k.scheduled(), "s")));
    auto claimed = engine().claim(k);
    EXPECT_TRUE(claimed.jobs.empty());
    EXPECT_FALSE(claimed.next_due);  // no hint for a paused queue: a worker need not wake
    EXPECT_EQ(state(k, "s"), "scheduled");
    ASSERT_EQ(engine().set_paused(k, false), 1);
    claimed = engine().claim(k);
    ASSERT_EQ(claimed.jobs.size(), 1u);
    EXPECT_EQ(claimed.jobs[0].id, "s");
}

TEST_F(Transitions, ClaimCreatesALeaseWithAFreshTokenPerJob) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"a", "1"}, {"b", "2"}}).size(), 2u);
    auto before = raw().server_now_ms();
    auto claimed = engine().claim(k, "worker-7", 30000ms, 5);
    auto after = raw().server_now_ms();
    ASSERT_EQ(claimed.jobs.size(), 2u);
    EXPECT_NE(claimed.jobs[0].token, claimed.jobs[1].token);
    for (const auto& job : claimed.jobs) {
        EXPECT_FALSE(job.token.empty());
        auto deadline = raw().zscore(k.running(), job.id);
        ASSERT_TRUE(deadline);
        EXPECT_GE(*deadline, before + 30000);
        EXPECT_LE(*deadline, after + 30000);
        auto record = raw().hgetall(k.job(job.id));
        EXPECT_EQ(record["state"], "running");
        EXPECT_EQ(record["token"], job.token);
        EXPECT_EQ(record["worker"], "worker-7");
        EXPECT_EQ(record["attempts"], "1");
        EXPECT_EQ(record["lease"], std::to_string(*deadline));
        EXPECT_EQ(job.attempt, 1);
    }
    EXPECT_EQ(raw().zcard(k.priorities()), 0);
    EXPECT_FALSE(raw().exists(k.waiting(0)));
    // The same job claimed again later (after a release) gets a token never seen before.
    auto first = claimed.jobs[0];
    ASSERT_EQ(engine().release(k, first.id, first.token), Settle::done);
    auto again = take(k);
    EXPECT_EQ(again.id, first.id);
    EXPECT_NE(again.token, first.token);
}

TEST_F(Transitions, ClaimWakeTokensFollowTheWork) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"a", "1"}, {"b", "2"}}).size(), 2u);
    EXPECT_EQ(raw().llen(k.wake()), 1);
    raw().call({"DEL", k.wake()});
    take(k);
    EXPECT_EQ(raw().llen(k.wake()), 1);  // more waits: another idle worker is woken
    take(k);
    EXPECT_FALSE(raw().exists(k.wake()));  // nothing waits: no stale wake-up left
}

TEST_F(Transitions, CorruptOrMissingRecordsAreDeadLetteredAndDoNotBlockTheQueue) {
    auto k = keys();
    ASSERT_EQ(engine()
                  .enqueue(k, {{"gone", "1"}, {"string", "2"}, {"nopayload", "3"}, {"good", "4"}})
                  .size(),
              4u);
    raw().call({"DEL", k.job("gone")});
    raw().call({"DEL", k.job("string")});
    raw().call({"SET", k.job("string"), "garbage"});
    raw().call({"HDEL", k.job("nopayload"), "payload"});

    auto claimed = engine().claim(k, "w1", 30000ms, 10);
    ASSERT_EQ(claimed.jobs.size(), 1u);
    EXPECT_EQ(claimed.jobs[0].id, "good");
    EXPECT_EQ(claimed.jobs[0].payload, "4");

    for (std::string id : {"gone", "string", "nopayload"}) {
        EXPECT_TRUE(raw().zscore(k.dead(), id)) << id;
        EXPECT_EQ(raw().type(k.job(id)), "hash") << id;
        EXPECT_EQ(state(k, id), "dead") << id;
        EXPECT_EQ(raw().hget(k.job(id), "reason"), "corrupt") << id;
        EXPECT_FALSE(raw().hget(k.job(id), "error").value_or("").empty()) << id;
        EXPECT_EQ(raw().llen(k.errors(id)), 1) << id;
    }
    // The foreign value is kept aside, not thrown away.
    EXPECT_EQ(raw().get(k.prefix() + "corrupt:string"), "garbage");

    // The queue goes on.
    ASSERT_EQ(engine().enqueue_one(k, "after"), EnqueueStatus::created);
    EXPECT_EQ(take(k).id, "after");

    // Deleting such a dead letter removes what was kept aside, too.
    EXPECT_TRUE(engine().delete_dead(k, {"string"})[0].ok);
    EXPECT_FALSE(raw().exists(k.prefix() + "corrupt:string"));
}

TEST_F(Transitions, CorruptOrMissingScheduledRecordsAreDeadLetteredAndDoNotBlockTheQueue) {
    auto k = keys();
    for (std::string id : {"s-gone", "s-string", "s-good"})
        ASSERT_EQ(engine().enqueue_one(k, id, Options().delay(100ms)), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(k, "w-good"), EnqueueStatus::created);
    raw().call({"DEL", k.job("s-gone")});
    raw().call({"DEL", k.job("s-string")});
    raw().call({"SET", k.job("s-string"), "garbage"});
    auto last_due = 0LL;
    for (const auto& [id, due] : raw().zrange_scores(k.scheduled()))
        last_due = std::max(last_due, due);
    ASSERT_TRUE(server_time_passes(last_due));

    std::vector<std::string> got;
    for (const auto& job : engine().claim(k, "w1", 30000ms, 10).jobs)
        got.push_back(job.id);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::string>{"s-good", "w-good"}));
    for (std::string id : {"s-gone", "s-string"}) {
        EXPECT_TRUE(raw().zscore(k.dead(), id)) << id;
        EXPECT_EQ(state(k, id), "dead") << id;
        EXPECT_EQ(raw().hget(k.job(id), "reason"), "corrupt") << id;
    }
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
}

TEST_F(Transitions, CorruptRunningRecordsAreDeadLetteredByTheReaper) {
    auto k = keys();
    ASSERT_EQ(
        engine().enqueue(k, {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}).size(),
        5u);
    auto a = take(k, "w1", 1ms);
    take(k, "w1", 1ms);
    take(k, "w1", 1ms);
    take(k, "w-lost", 60000ms);
    take(k, "w-lost", 60000ms);
    for (std::string id : {"a", "e"}) {
        raw().call({"DEL", k.job(id)});
        raw().call({"SET", k.job(id), "garbage"});
    }
    raw().call({"DEL", k.job("c")});
    ASSERT_TRUE(reap_until(k, 3));
    EXPECT_EQ(state(k, "a"), "dead");
    EXPECT_EQ(raw().hget(k.job("a"), "reason"), "corrupt");
    EXPECT_EQ(state(k, "c"), "dead");
    EXPECT_EQ(raw().hget(k.job("c"), "reason"), "corrupt");
    // The healthy lapsed job is taken back as usual.
    EXPECT_EQ(state(k, "b"), "waiting");
    // Leases that still hold are left alone, a corrupt record's too: their turn comes when
    // they lapse.
    EXPECT_EQ(state(k, "d"), "running");
    EXPECT_EQ(raw().zrange(k.running()), (std::vector<std::string>{"d", "e"}));
    // The old holder of a dead-lettered record is simply refused.
    EXPECT_EQ(engine().complete(k, "a", a.token), Settle::refused);
}

TEST_F(Transitions, CorruptRecordsNeverBreakSettleCancelPurgeOrStats) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"run", "0"}, {"w1", "1"}, {"w2", "2"}, {"w3", "3"}}).size(),
              4u);
    ASSERT_EQ(engine().enqueue(k, {{"s1", "1"}, {"s2", "2"}}, Options().delay(60000ms)).size(), 2u);
    auto held = take(k);
    ASSERT_EQ(held.id, "run");
    for (std::string id : {"run", "w1", "w3", "s1"}) {
        raw().call({"DEL", k.job(id)});
        raw().call({"SET", k.job(id), "garbage"});
    }

    // Settling a record that is not a job quarantines it (a dead letter, the result kept);
    // then it holds no lease: the next settle or renewal is refused, not an error.
    EXPECT_EQ(engine().complete(k, "run", held.token, "the result"), Settle::quarantined);
    EXPECT_EQ(state(k, "run"), "dead");
    EXPECT_EQ(raw().hget(k.job("run"), "reason"), "corrupt");
    EXPECT_EQ(raw().hget(k.job("run"), "result"), "the result");
    EXPECT_EQ(raw().get(k.prefix() + "corrupt:run"), "garbage");
    EXPECT_FALSE(raw().zscore(k.running(), "run"));
    EXPECT_EQ(engine().fail(k, "run", held.token, 0ms).settle, Settle::refused);
    EXPECT_EQ(engine().release(k, "run", held.token), Settle::refused);
    EXPECT_EQ(engine().renew(k, "run", held.token), RenewStatus::lost);

    // Stats still answer (the corrupt head of the list has no readable age).
    auto stats = engine().stats(k);
    EXPECT_EQ(stats.waiting, 3);
    EXPECT_EQ(stats.scheduled, 2);

    // Cancel reports the corrupt record as dead (and dead-letters it), the others as usual.
    auto cancelled = engine().cancel(k, {"w1", "w2"});
    ASSERT_EQ(cancelled.size(), 2u);
    EXPECT_EQ(cancelled[0].status, CancelStatus::finished);
    EXPECT_EQ(cancelled[0].state, JobState::dead);
    EXPECT_EQ(cancelled[1].status, CancelStatus::cancelled);
    EXPECT_EQ(raw().hget(k.job("w1"), "reason"), "corrupt");

    // Purge cancels the healthy jobs and dead-letters the corrupt ones.
    long long total = 0;
    for (int calls = 0; calls < 10; ++calls) {
        auto step = engine().purge(k, PurgeWhich::both, 100);
        total += step.cancelled;
        if (!step.more) break;
    }
    EXPECT_EQ(total, 1);  // s2; w1 (already dead) and the corrupt w3 and s1 are not counted
    EXPECT_EQ(state(k, "s2"), "cancelled");
    EXPECT_EQ(state(k, "w3"), "dead");
    EXPECT_EQ(state(k, "s1"), "dead");
    EXPECT_EQ(raw().hget(k.job("s1"), "reason"), "corrupt");
    EXPECT_EQ(raw().zcard(k.priorities()), 0);
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
    auto dead = raw().zrange(k.dead());
    std::sort(dead.begin(), dead.end());
    EXPECT_EQ(dead, (std::vector<std::string>{"run", "s1", "w1", "w3"}));
}

TEST_F(Transitions, ARecordInAStateWorkqNeverWritesIsDeadLetteredWithAReason) {
    // Issue 23, item 12: such a record left the waiting list at the claim and was then found in
    // no structure at all. Waiting, due scheduled and lapsed running records alike.
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"run", "0"}}).size(), 1u);
    take(k, "w1", 1ms);
    ASSERT_EQ(engine().enqueue(k, {{"w-bad", "1"}, {"w-good", "2"}}).size(), 2u);
    ASSERT_EQ(engine().enqueue_one(k, "s-bad", Options().delay(50ms)), EnqueueStatus::created);
    raw().call({"HSET", k.job("w-bad"), "state", "bogus"});
    raw().call({"HSET", k.job("s-bad"), "state", "zombie"});
    raw().call({"HSET", k.job("run"), "state", "runing"});
    ASSERT_TRUE(server_time_passes(*raw().zscore(k.scheduled(), "s-bad")));

    auto claimed = engine().claim(k, "w2", 30000ms, 10);
    ASSERT_EQ(claimed.jobs.size(), 1u);
    EXPECT_EQ(claimed.jobs[0].id, "w-good");
    ASSERT_TRUE(reap_until(k, 1));
    for (std::string id : {"w-bad", "s-bad", "run"}) {
        EXPECT_EQ(state(k, id), "dead") << id;
        EXPECT_TRUE(raw().zscore(k.dead(), id)) << id;
        EXPECT_EQ(raw().hget(k.job(id), "reason"), "corrupt") << id;
        // The payload is kept: a user can requeue it once the record is whole again.
        EXPECT_TRUE(raw().hget(k.job(id), "payload")) << id;
    }
    EXPECT_NE(raw().hget(k.job("w-bad"), "error")->find("'bogus'"), std::string::npos);
    EXPECT_NE(raw().hget(k.job("s-bad"), "error")->find("'zombie'"), std::string::npos);
    EXPECT_NE(raw().hget(k.job("run"), "error")->find("'runing'"), std::string::npos);
    EXPECT_EQ(raw().zcard(k.running()), 1);  // w-good
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
}

TEST_F(Transitions, TrimmingACorruptDeadLetterRemovesWhatWasKeptAside) {
    auto k = keys();
    ASSERT_EQ(engine().dead_cap(k, 1, 0ms), 0);
    ASSERT_EQ(engine().enqueue_one(k, "bad"), EnqueueStatus::created);
    raw().call({"DEL", k.job("bad")});
    raw().call({"SET", k.job("bad"), "garbage"});
    EXPECT_TRUE(engine().claim(k).jobs.empty());
    ASSERT_TRUE(raw().exists(k.prefix() + "corrupt:bad"));
    auto died = *raw().zscore(k.dead(), "bad");
    ASSERT_TRUE(server_time_passes(died));
    make_dead(k, "next");  // the cap of 1 trims "bad"
    EXPECT_EQ(raw().zrange(k.dead()), std::vector<std::string>{"next"});
    EXPECT_FALSE(raw().exists(k.job("bad")));
    EXPECT_FALSE(raw().exists(k.prefix() + "corrupt:bad"));
    EXPECT_EQ(raw().counter(k, "trimmed"), 1);
}

// --- renew ---------------------------------------------------------------------------------------

TEST_F(Transitions, RenewExtendsTheLeaseOfItsHolder) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    auto job = take(k, "w1", 1000ms);
    auto before = raw().server_now_ms();
    EXPECT_EQ(engine().renew(k, "a", job.token, 60000ms), RenewStatus::renewed);
    auto deadline = raw().zscore(k.running(), "a");
    ASSERT_TRUE(deadline);
    EXPECT_GE(*deadline, before + 60000);
    EXPECT_EQ(raw().hget(k.job("a"), "lease"), std::to_string(*deadline));
    EXPECT_EQ(engine().reap(k), 0);
}

TEST_F(Transitions, RenewRefusesATokenThatNoLongerHoldsTheJob) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    auto job = take(k);
    auto deadline = raw().zscore(k.running(), "a");
    EXPECT_EQ(engine().renew(k, "a", "not-the-token"), RenewStatus::lost);
    EXPECT_EQ(engine().renew(k, "unknown-id", job.token), RenewStatus::lost);
    EXPECT_EQ(raw().zscore(k.running(), "a"), deadline);

    ASSERT_EQ(engine().complete(k, "a", job.token), Settle::done);
    EXPECT_EQ(engine().renew(k, "a", job.token), RenewStatus::lost);  // settled: nothing to renew
    EXPECT_EQ(state(k, "a"), "succeeded");
    EXPECT_EQ(raw().zcard(k.running()), 0);
}

TEST_F(Transitions, RenewReportsACancelRequest) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    auto job = take(k);
    EXPECT_EQ(engine().renew(k, "a", job.token), RenewStatus::renewed);
    auto cancelled = engine().cancel(k, {"a"});
    EXPECT_EQ(cancelled[0].status, CancelStatus::flagged);
    EXPECT_EQ(engine().renew(k, "a", job.token), RenewStatus::cancel_requested);
    EXPECT_EQ(state(k, "a"), "running");
}

// --- complete ------------------------------------------------------------------------------------

TEST_F(Transitions, CompleteStoresTheResultAndCounts) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    auto job = take(k);
    std::string result("out\0put\xff", 8);
    ASSERT_EQ(engine().complete(k, "a", job.token, result, 600000ms), Settle::done);
    auto record = raw().hgetall(k.job("a"));
    EXPECT_EQ(record["state"], "succeeded");
    EXPECT_EQ(record["result"], result);
    EXPECT_FALSE(record["finished"].empty());
    EXPECT_EQ(record.count("lease"), 0u);
    EXPECT_FALSE(raw().zscore(k.running(), "a"));
    EXPECT_EQ(raw().counter(k, "succeeded"), 1);
    EXPECT_EQ(raw().counter(k, "failed"), 0);
    auto ttl = raw().pttl(k.job("a"));
    EXPECT_GT(ttl, 500000);  // kept for the result TTL, then gone
    EXPECT_LE(ttl, 600000);

    // A zero TTL drops the record at once.
    ASSERT_EQ(engine().enqueue_one(k, "b"), EnqueueStatus::created);
    job = take(k);
    ASSERT_EQ(engine().complete(k, "b", job.token, "r", 0ms), Settle::done);
    EXPECT_FALSE(raw().exists(k.job("b")));
    EXPECT_EQ(raw().counter(k, "succeeded"), 2);
}

TEST_F(Transitions, CutResultsFitsACompleteCallToABudgetAndCountsWhatItDropped) {
    // Issue 23, item 7: a report the server refuses for its size goes again cut, as --max-result
    // cuts, never unchanged.
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"a", "1"}, {"b", "2"}}).size(), 2u);
    auto claimed = engine().claim(k, "w1", 30000ms, 2).jobs;
    ASSERT_EQ(claimed.size(), 2u);
    std::string big(300000, 'x');
    std::vector<queue::Completion> jobs{{"a", claimed[0].token, big, 5},
                                        {"b", claimed[1].token, "small", 0}};
    auto call = queue::complete_call(k, jobs, 60000ms);
    auto unchanged = call;
    EXPECT_FALSE(queue::cut_results(call, 1 << 20));  // fits: nothing cut
    EXPECT_EQ(call.args, unchanged.args);
    EXPECT_FALSE(queue::cut_results(unchanged = queue::fail_call(k, "a", "t", "e", "r", 0ms, 0ms),
                                    10));  // not a success report
    ASSERT_TRUE(queue::cut_results(call, 100000));
    std::size_t total = 0;
    for (const auto& arg : call.args)
        total += arg.size();
    for (const auto& key : call.keys)
        total += key.size();
    EXPECT_LE(total, 100000u);
    EXPECT_EQ(call.args[4].size() + std::stoull(call.args[5]), big.size() + 5);
    EXPECT_EQ(call.args[8], "small");  // within its share: kept whole
    EXPECT_EQ(call.args[9], "0");
    auto settled = queue::parse_complete(engine().run(call));
    EXPECT_EQ(settled, (std::vector<Settle>{Settle::done, Settle::done}));
    EXPECT_EQ(raw().hget(k.job("a"), "truncated"), call.args[5]);
    EXPECT_EQ(raw().hget(k.job("a"), "result")->size(), call.args[4].size());
}

TEST_F(Transitions, CompleteRefusesATokenThatDoesNotHoldTheJob) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    auto job = take(k);
    EXPECT_EQ(engine().complete(k, "a", job.token + "x"), Settle::refused);
    EXPECT_EQ(engine().complete(k, "no-such-job", job.token), Settle::refused);
    EXPECT_EQ(state(k, "a"), "running");
    EXPECT_TRUE(raw().zscore(k.running(), "a"));
    EXPECT_EQ(raw().counter(k, "succeeded"), 0);
    EXPECT_FALSE(raw().exists(k.job("no-such-job")));  // no stray record
}

TEST_F(Transitions, RetriedCompleteIsADuplicateAndChangesNothing) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    auto job = take(k);
    ASSERT_EQ(engine().complete(k, "a", job.token, "first"), Settle::done);
    auto finished = raw().hget(k.job("a"), "finished");
    EXPECT_EQ(engine().complete(k, "a", job.token, "second"), Settle::duplicate);
    EXPECT_EQ(raw().hget(k.job("a"), "result"), "first");
    EXPECT_EQ(raw().hget(k.job("a"), "finished"), finished);
    EXPECT_EQ(raw().counter(k, "succeeded"), 1);
    // Nor may the same token fail it afterwards.
    auto failed = engine().fail(k, "a", job.token, 1000ms);
    EXPECT_EQ(failed.settle, Settle::duplicate);
    EXPECT_EQ(failed.state, JobState::succeeded);
    EXPECT_EQ(state(k, "a"), "succeeded");
    EXPECT_EQ(raw().counter(k, "failed"), 0);
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
}

TEST_F(Transitions, ABatchOfCompletionsJudgesEachJobOnItsOwn) {
    auto k = keys();
    for (auto id : {"a", "b", "c", "d"})
        ASSERT_EQ(engine().enqueue_one(k, id), EnqueueStatus::created);
    auto a = take(k), b = take(k), c = take(k), d = take(k);
    ASSERT_EQ(engine().complete(k, "b", b.token, "b alone"), Settle::done);  // b: a retried settle
    auto not_the_holder = c.token + "x";
    std::vector<queue::Completion> batch{{"a", a.token, "result a"},
                                         {"b", b.token, "b again"},
                                         {"c", not_the_holder, "not the holder"},
                                         {"d", d.token, "cut", 7},
                                         {"gone", "token", "no such job"}};
    auto settled = queue::parse_complete(engine().run(queue::complete_call(k, batch, 600000ms)));
    EXPECT_EQ(settled, (std::vector<Settle>{Settle::done, Settle::duplicate, Settle::refused,
                                            Settle::done, Settle::refused}));
    EXPECT_EQ(state(k, "a"), "succeeded");
    EXPECT_EQ(raw().hget(k.job("a"), "result"), "result a");
    EXPECT_EQ(raw().hget(k.job("b"), "result"), "b alone");
    EXPECT_EQ(state(k, "c"), "running");
    EXPECT_EQ(raw().hget(k.job("d"), "truncated"), "7");
    EXPECT_FALSE(raw().hget(k.job("a"), "truncated"));
    EXPECT_FALSE(raw().zscore(k.running(), "a"));
    EXPECT_FALSE(raw().zscore(k.running(), "d"));
    EXPECT_TRUE(raw().zscore(k.running(), "c"));
    EXPECT_EQ(raw().counter(k, "succeeded"), 3);  // b once, a and d: each success counted once
    EXPECT_EQ(engine().stats(k).succeeded_last_minute, 3);
    EXPECT_FALSE(raw().exists(k.job("gone")));
}

// --- fail ----------------------------------------------------------------------------------------

TEST_F(Transitions, FailRetriesAfterTheDelayByServerTime) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().max_attempts(3)), EnqueueStatus::created);
    auto job = take(k);
    auto before = raw().server_now_ms();
    auto outcome = engine().fail(k, "a", job.token, 5000ms, "exit 3: disk full");
    auto after = raw().server_now_ms();
    EXPECT_EQ(outcome.settle, Settle::done);
    EXPECT_EQ(outcome.state, JobState::scheduled);
    EXPECT_GE(outcome.due_ms, before + 5000);
    EXPECT_LE(outcome.due_ms, after + 5000);
    EXPECT_EQ(raw().zscore(k.scheduled(), "a"), outcome.due_ms);
    EXPECT_FALSE(raw().zscore(k.running(), "a"));
    EXPECT_EQ(state(k, "a"), "scheduled");
    EXPECT_EQ(raw().hget(k.job("a"), "attempts"), "1");
    EXPECT_EQ(raw().hget(k.job("a"), "error"), "exit 3: disk full");
    EXPECT_EQ(raw().hget(k.job("a"), "reason"), "exit");
    EXPECT_EQ(raw().counter(k, "failed"), 1);
    auto errors = raw().lrange(k.errors("a"));
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("disk full"), std::string::npos);
    EXPECT_NE(errors[0].find("\"attempt\":1"), std::string::npos);
    EXPECT_TRUE(engine().claim(k).jobs.empty());  // not before its time

    // With no delay it is due at once, and the next claim runs attempt 2.
    ASSERT_EQ(raw().call({"ZADD", k.scheduled(), std::to_string(before), "a"}).integer, 0);
    auto second = take(k);
    EXPECT_EQ(second.id, "a");
    EXPECT_EQ(second.attempt, 2);
}

TEST_F(Transitions, PermanentFailureIsDeadAtOnce) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().max_attempts(10)), EnqueueStatus::created);
    auto job = take(k);
    auto before = raw().server_now_ms();
    auto outcome = engine().fail(k, "a", job.token, std::nullopt, "exit 100");
    auto after = raw().server_now_ms();
    EXPECT_EQ(outcome.settle, Settle::done);
    EXPECT_EQ(outcome.state, JobState::dead);
    auto died = raw().zscore(k.dead(), "a");
    ASSERT_TRUE(died);
    EXPECT_GE(*died, before);
    EXPECT_LE(*died, after);
    EXPECT_EQ(state(k, "a"), "dead");
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
    EXPECT_EQ(raw().zcard(k.running()), 0);
    EXPECT_EQ(raw().pttl(k.job("a")), -1);  // dead letters are kept until removed
}

TEST_F(Transitions, FailureWithAttemptsSpentIsDead) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().max_attempts(2)), EnqueueStatus::created);
    auto first = take(k);
    ASSERT_EQ(engine().fail(k, "a", first.token, 0ms).state, JobState::scheduled);
    auto second = take(k);  // due at once: promoted by the claim
    EXPECT_EQ(second.attempt, 2);
    auto outcome = engine().fail(k, "a", second.token, 0ms);
    EXPECT_EQ(outcome.state, JobState::dead);
    EXPECT_TRUE(raw().zscore(k.dead(), "a"));
    EXPECT_FALSE(raw().zscore(k.scheduled(), "a"));
    EXPECT_EQ(raw().counter(k, "failed"), 2);
    EXPECT_EQ(raw().llen(k.errors("a")), 2);
    EXPECT_TRUE(engine().claim(k).jobs.empty());
}

TEST_F(Transitions, RetriedFailIsADuplicateAndChangesNothing) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().max_attempts(3)), EnqueueStatus::created);
    auto job = take(k);
    auto first = engine().fail(k, "a", job.token, 60000ms);
    ASSERT_EQ(first.state, JobState::scheduled);
    auto retried = engine().fail(k, "a", job.token, 1000ms, "again");
    EXPECT_EQ(retried.settle, Settle::duplicate);
    EXPECT_EQ(retried.state, JobState::scheduled);
    EXPECT_EQ(raw().zscore(k.scheduled(), "a"), first.due_ms);
    EXPECT_EQ(raw().counter(k, "failed"), 1);
    EXPECT_EQ(raw().llen(k.errors("a")), 1);
    EXPECT_EQ(raw().hget(k.job("a"), "error"), "it broke");
    // Completing with the token that already failed the job is refused as a duplicate too.
    EXPECT_EQ(engine().complete(k, "a", job.token), Settle::duplicate);
    EXPECT_EQ(state(k, "a"), "scheduled");
    EXPECT_EQ(raw().counter(k, "succeeded"), 0);
}

TEST_F(Transitions, FailRefusesATokenThatDoesNotHoldTheJob) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    take(k);
    auto outcome = engine().fail(k, "a", "stale", 0ms);
    EXPECT_EQ(outcome.settle, Settle::refused);
    EXPECT_EQ(outcome.state, JobState::running);
    EXPECT_EQ(engine().fail(k, "nope", "stale", 0ms).state, JobState::unknown);
    EXPECT_EQ(state(k, "a"), "running");
    EXPECT_EQ(raw().counter(k, "failed"), 0);
    EXPECT_EQ(raw().llen(k.errors("a")), 0);
}

// --- release -------------------------------------------------------------------------------------

TEST_F(Transitions, ReleaseDoesNotCountTheAttemptAndPutsTheJobAtTheHead) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"a", "1"}, {"b", "2"}}).size(), 2u);
    auto job = take(k);
    ASSERT_EQ(job.id, "a");
    ASSERT_EQ(engine().release(k, "a", job.token), Settle::done);
    auto record = raw().hgetall(k.job("a"));
    EXPECT_EQ(record["state"], "waiting");
    EXPECT_EQ(record["attempts"], "0");
    EXPECT_EQ(record.count("token"), 0u);
    EXPECT_EQ(raw().lrange(k.waiting(0)), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(raw().zcard(k.running()), 0);
    EXPECT_EQ(raw().counter(k, "failed"), 0);
    EXPECT_EQ(raw().llen(k.errors("a")), 0);

    // The released token holds nothing any more.
    EXPECT_EQ(engine().release(k, "a", job.token), Settle::refused);
    EXPECT_EQ(engine().complete(k, "a", job.token), Settle::refused);
    EXPECT_EQ(raw().lrange(k.waiting(0)), (std::vector<std::string>{"a", "b"}));

    auto again = take(k);
    EXPECT_EQ(again.id, "a");
    EXPECT_EQ(again.attempt, 1);  // the release did not count
}

TEST_F(Transitions, ReleaseRefusesAStrangerAndCancelsAFlaggedJob) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    auto job = take(k);
    EXPECT_EQ(engine().release(k, "a", "stranger"), Settle::refused);
    EXPECT_EQ(state(k, "a"), "running");
    ASSERT_EQ(engine().cancel(k, {"a"})[0].status, CancelStatus::flagged);
    EXPECT_EQ(engine().release(k, "a", job.token), Settle::done);
    EXPECT_EQ(state(k, "a"), "cancelled");
    EXPECT_EQ(raw().llen(k.waiting(0)), 0);
    EXPECT_EQ(raw().zcard(k.running()), 0);
}

// --- claim ahead (workq-work --claim-ahead) ------------------------------------------------------

TEST_F(Transitions, ClaimAheadLeasesTheJobsPastTheStartingOnesWithoutCountingThem) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}).size(), 4u);
    auto result = engine().claim_ahead(k, 3, 2);
    ASSERT_EQ(result.jobs.size(), 3u);
    EXPECT_EQ(result.jobs[0].id, "a");
    EXPECT_FALSE(result.jobs[0].ahead);
    EXPECT_EQ(result.jobs[1].id, "b");
    EXPECT_TRUE(result.jobs[1].ahead);
    EXPECT_EQ(result.jobs[2].id, "c");
    EXPECT_TRUE(result.jobs[2].ahead);
    for (const auto& job : result.jobs)
        EXPECT_EQ(job.attempt, 1);  // the one it will be when it starts
    EXPECT_EQ(raw().hget(k.job("a"), "attempts"), "1");
    EXPECT_EQ(raw().hget(k.job("a"), "ahead"), std::nullopt);
    for (const auto* id : {"b", "c"}) {
        auto record = raw().hgetall(k.job(id));
        EXPECT_EQ(record["state"], "running");
        EXPECT_EQ(record["ahead"], "1");
        EXPECT_EQ(record.count("attempts"), 0u);  // not counted
        EXPECT_FALSE(record["token"].empty());
        EXPECT_TRUE(raw().zscore(k.running(), id));  // leased: renewal, reaper, cancel see it
    }
    EXPECT_EQ(engine().renew(k, "b", result.jobs[1].token), RenewStatus::renewed);
    auto stats = engine().stats(k);
    EXPECT_EQ(stats.running, 1);
    EXPECT_EQ(stats.claimed_ahead, 2);
    EXPECT_EQ(stats.waiting, 1);

    // Fewer jobs than asked: the starting places are filled first.
    auto k2 = keys("other");
    ASSERT_EQ(engine().enqueue(k2, {{"x", "1"}}).size(), 1u);
    auto few = engine().claim_ahead(k2, 3, 2);
    ASSERT_EQ(few.jobs.size(), 1u);
    EXPECT_FALSE(few.jobs[0].ahead);
}

TEST_F(Transitions, StartCountsTheAttemptOfAJobClaimedAheadOnce) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    auto job = engine().claim_ahead(k, 1, 1).jobs.at(0);
    ASSERT_TRUE(job.ahead);
    EXPECT_EQ(engine().start(k, "a", "stranger"), 0);
    EXPECT_EQ(raw().hget(k.job("a"), "ahead"), "1");
    EXPECT_EQ(engine().start(k, "a", job.token), 1);
    EXPECT_EQ(raw().hget(k.job("a"), "attempts"), "1");
    // Cleared with HDEL: a first write never refused at maxmemory.
    EXPECT_EQ(raw().hget(k.job("a"), "ahead"), std::nullopt);
    EXPECT_EQ(engine().start(k, "a", job.token), 0);  // sent again after a reconnect: no change
    EXPECT_EQ(raw().hget(k.job("a"), "attempts"), "1");
    EXPECT_EQ(engine().stats(k).running, 1);
    EXPECT_EQ(engine().stats(k).claimed_ahead, 0);
    EXPECT_EQ(engine().complete(k, "a", job.token), Settle::done);
    EXPECT_EQ(raw().hget(k.job("a"), "attempts"), "1");
    EXPECT_EQ(engine().start(k, "a", job.token), 0);  // settled: left as it is
    EXPECT_EQ(state(k, "a"), "succeeded");
}

TEST_F(Transitions, CompleteOrFailOfAJobStillMarkedCountsItsRun) {
    auto k = keys();
    ASSERT_EQ(
        engine().enqueue(k, {{"a", "1"}, {"b", "2"}, {"c", "3"}}, Options().max_attempts(1)).size(),
        3u);
    auto jobs = engine().claim_ahead(k, 3, 3).jobs;
    ASSERT_EQ(jobs.size(), 3u);
    for (const auto& job : jobs)
        ASSERT_TRUE(job.ahead);
    EXPECT_EQ(engine().complete(k, "a", jobs[0].token), Settle::done);
    EXPECT_EQ(raw().hget(k.job("a"), "attempts"), "1");
    EXPECT_EQ(raw().hget(k.job("a"), "ahead"), "");
    // Counted before it is judged: with max attempts 1, a failure is its last.
    auto failed = engine().fail(k, "b", jobs[1].token, 1000ms);
    EXPECT_EQ(failed.state, JobState::dead);
    EXPECT_EQ(raw().hget(k.job("b"), "attempts"), "1");
    EXPECT_EQ(raw().counter(k, "failed"), 1);
    // A retried start after the settle changes nothing.
    EXPECT_EQ(engine().start(k, "a", jobs[0].token), 0);
    EXPECT_EQ(engine().start(k, "b", jobs[1].token), 0);
    EXPECT_EQ(raw().hget(k.job("b"), "attempts"), "1");
    EXPECT_EQ(engine().stats(k).claimed_ahead, 1);  // c
}

TEST_F(Transitions, ReleaseOfAJobClaimedAheadKeepsItsCount) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"a", "1"}, {"b", "2"}}, Options().max_attempts(3)).size(), 2u);
    // a runs and fails once: attempts 1.
    auto first = take(k);
    ASSERT_EQ(first.id, "a");
    ASSERT_EQ(engine().fail(k, "a", first.token, 0ms).state, JobState::scheduled);
    ASSERT_TRUE(wait_until([&] { return engine().stats(k).waiting == 2; }));
    auto jobs = engine().claim_ahead(k, 2, 2).jobs;
    ASSERT_EQ(jobs.size(), 2u);
    const auto& a = jobs[0].id == "a" ? jobs[0] : jobs[1];
    ASSERT_EQ(a.id, "a");
    EXPECT_EQ(a.attempt, 2);
    EXPECT_EQ(engine().release(k, "a", a.token), Settle::done);
    auto record = raw().hgetall(k.job("a"));
    EXPECT_EQ(record["state"], "waiting");
    EXPECT_EQ(record["attempts"], "1");  // neither counted nor given back
    EXPECT_EQ(record.count("ahead"), 0u);
    EXPECT_EQ(raw().lrange(k.waiting(0)).front(), "a");
    // A cancel flagged while it was held ahead: the release cancels it, not run.
    const auto& b = jobs[0].id == "b" ? jobs[0] : jobs[1];
    ASSERT_EQ(engine().cancel(k, {"b"})[0].status, CancelStatus::flagged);
    EXPECT_EQ(engine().release(k, "b", b.token), Settle::done);
    EXPECT_EQ(state(k, "b"), "cancelled");
    EXPECT_EQ(raw().hget(k.job("b"), "attempts"), std::nullopt);
}

TEST_F(Transitions, ReapGivesBackALapsedJobClaimedAheadUncounted) {
    auto k = keys();
    // Max attempts 1: a job claimed ahead by a worker that vanished must still run.
    ASSERT_EQ(
        engine().enqueue(k, {{"a", "1"}, {"b", "2"}, {"c", "3"}}, Options().max_attempts(1)).size(),
        3u);
    auto jobs = engine().claim_ahead(k, 2, 1, "w-killed", 200ms).jobs;
    ASSERT_EQ(jobs.size(), 2u);
    ASSERT_FALSE(jobs[0].ahead);
    ASSERT_TRUE(jobs[1].ahead);
    ASSERT_TRUE(reap_until(k, 2));
    // a was started: its lapse counts (dead, its attempts spent). b was not.
    EXPECT_EQ(state(k, "a"), "dead");
    EXPECT_EQ(state(k, "b"), "waiting");
    EXPECT_EQ(raw().hget(k.job("b"), "attempts"), std::nullopt);
    EXPECT_EQ(raw().llen(k.errors("b")), 0);
    EXPECT_EQ(raw().counter(k, "failed"), 1);
    EXPECT_EQ(raw().lrange(k.waiting(0)), (std::vector<std::string>{"b", "c"}));
    EXPECT_EQ(engine().stats(k).claimed_ahead, 0);

    // The next claim runs it as its first attempt, and clears the mark.
    auto again = take(k, "w2");
    EXPECT_EQ(again.id, "b");
    EXPECT_EQ(again.attempt, 1);
    EXPECT_FALSE(again.ahead);
    EXPECT_EQ(raw().hget(k.job("b"), "ahead"), "");
    EXPECT_EQ(engine().complete(k, "b", again.token), Settle::done);
    EXPECT_EQ(raw().hget(k.job("b"), "attempts"), "1");
    // The old holder's settle is refused.
    EXPECT_EQ(engine().complete(k, "b", jobs[1].token), Settle::refused);
}

TEST_F(Transitions, ReapCancelsALapsedJobClaimedAheadThatAUserCancelled) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    ASSERT_TRUE(engine().claim_ahead(k, 1, 1, "w1", 200ms).jobs.at(0).ahead);
    ASSERT_EQ(engine().cancel(k, {"a"})[0].status, CancelStatus::flagged);
    ASSERT_TRUE(reap_until(k, 1));
    EXPECT_EQ(state(k, "a"), "cancelled");
    EXPECT_EQ(raw().llen(k.waiting(0)), 0);
    EXPECT_EQ(raw().counter(k, "failed"), 0);
}

TEST_F(Transitions, ClaimAheadKeepsStrictPriorityAcrossQueues) {
    auto high = keys("high"), low = keys("low");
    ASSERT_EQ(engine().enqueue(low, {{"l1", "1"}}).size(), 1u);
    ASSERT_EQ(engine().enqueue(high, {{"h1", "1"}, {"h2", "2"}}).size(), 2u);
    std::vector<queue::QueueKeys> queues{high, low};
    auto result =
        queue::parse_claim(engine().run(queue::claim_call(queues, "w1", "t-prio", 30000ms, 3, 2)));
    ASSERT_EQ(result.jobs.size(), 3u);
    EXPECT_EQ(result.jobs[0].id, "h1");
    EXPECT_FALSE(result.jobs[0].ahead);
    EXPECT_EQ(result.jobs[1].id, "h2");
    EXPECT_TRUE(result.jobs[1].ahead);
    EXPECT_EQ(result.jobs[2].id, "l1");
    EXPECT_TRUE(result.jobs[2].ahead);
}

// --- reap ----------------------------------------------------------------------------------------

TEST_F(Transitions, ReapReturnsALapsedJobToTheHeadCountingTheAttempt) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"a", "1"}, {"b", "2"}}, Options().max_attempts(3)).size(), 2u);
    auto job = take(k, "w-frozen", 300ms);
    auto deadline = *raw().zscore(k.running(), "a");
    auto reaped_early = engine().reap(k);
    if (raw().server_now_ms() < deadline) {
        EXPECT_EQ(reaped_early, 0);  // the lease still holds
    }

    ASSERT_TRUE(reap_until(k, 1));
    EXPECT_GE(raw().server_now_ms(), deadline);
    EXPECT_EQ(state(k, "a"), "waiting");
    EXPECT_EQ(raw().lrange(k.waiting(0)), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(raw().zcard(k.running()), 0);
    EXPECT_EQ(raw().hget(k.job("a"), "attempts"), "1");  // the lapse counted
    EXPECT_EQ(raw().counter(k, "failed"), 1);
    EXPECT_EQ(error_reasons(k, "a"), std::vector<std::string>{"lease"});
    EXPECT_NE(raw().hget(k.job("a"), "error").value_or("").find("w-frozen"), std::string::npos);

    auto again = take(k, "w2");
    EXPECT_EQ(again.id, "a");
    EXPECT_EQ(again.attempt, 2);
    EXPECT_EQ(engine().reap(k), 0);  // a fresh lease is not taken back
}

TEST_F(Transitions, ReapMakesALapsedJobDeadWhenAttemptsAreSpent) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().max_attempts(1)), EnqueueStatus::created);
    take(k, "w1", 1ms);
    ASSERT_TRUE(reap_until(k, 1));
    EXPECT_EQ(state(k, "a"), "dead");
    EXPECT_TRUE(raw().zscore(k.dead(), "a"));
    EXPECT_EQ(raw().llen(k.waiting(0)), 0);
    EXPECT_EQ(raw().hget(k.job("a"), "reason"), "lease");
    EXPECT_EQ(raw().counter(k, "failed"), 1);
}

TEST_F(Transitions, ReapCancelsALapsedJobThatAUserCancelled) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    take(k, "w1", 200ms);
    ASSERT_EQ(engine().cancel(k, {"a"})[0].status, CancelStatus::flagged);
    ASSERT_TRUE(reap_until(k, 1));
    EXPECT_EQ(state(k, "a"), "cancelled");
    EXPECT_EQ(raw().llen(k.waiting(0)), 0);
    EXPECT_EQ(raw().zcard(k.dead()), 0);
    EXPECT_EQ(raw().zcard(k.running()), 0);
    EXPECT_TRUE(engine().claim(k).jobs.empty());
}

TEST_F(Transitions, ReapTakesAJobBackOnlyWhenItsOwnLeaseLapsed) {
    // Whatever the registry says of its worker (lost: maybe only frozen or cut off), a job is
    // its holder's until its lease lapses (issue 23, item 3).
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"a", "1"}, {"b", "2"}, {"c", "3"}}).size(), 3u);
    take(k, "w-lost", 60000ms);
    take(k, "w-short", 1ms);
    ASSERT_TRUE(reap_until(k, 1));
    EXPECT_EQ(state(k, "a"), "running");
    EXPECT_EQ(state(k, "b"), "waiting");
    EXPECT_EQ(raw().lrange(k.waiting(0)), (std::vector<std::string>{"b", "c"}));
    EXPECT_EQ(raw().zrange(k.running()), std::vector<std::string>{"a"});
    EXPECT_EQ(raw().counter(k, "failed"), 1);
}

TEST_F(Transitions, ReapTakesBackAtMostItsLimitAndSaysWhenMoreRemain) {
    auto k = keys();
    ASSERT_EQ(
        engine().enqueue(k, {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}).size(),
        5u);
    for (int i = 0; i < 5; ++i)
        take(k, "w1", 1ms);
    ASSERT_TRUE(server_time_passes(*raw().zscore(k.running(), "e")));
    auto first = engine().reap_step(k, 2);
    EXPECT_EQ(first.taken_back, 2);
    EXPECT_TRUE(first.more);
    auto second = engine().reap_step(k, 2);
    EXPECT_EQ(second.taken_back, 2);
    EXPECT_TRUE(second.more);
    auto last = engine().reap_step(k, 2);
    EXPECT_EQ(last.taken_back, 1);
    EXPECT_FALSE(last.more);
    EXPECT_EQ(raw().zcard(k.running()), 0);
    EXPECT_EQ(raw().llen(k.waiting(0)), 5);
}

TEST_F(Transitions, ReapPromotesDueScheduledJobs) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "s", Options().delay(100ms)), EnqueueStatus::created);
    ASSERT_TRUE(server_time_passes(*raw().zscore(k.scheduled(), "s")));
    EXPECT_EQ(engine().reap(k), 0);
    EXPECT_EQ(state(k, "s"), "waiting");
    EXPECT_EQ(raw().lrange(k.waiting(0)), std::vector<std::string>{"s"});
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
}

TEST_F(Transitions, LapsedHolderMaySettleWhileNobodyClaimedSince) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue(k, {{"a", "1"}, {"b", "2"}}, Options().max_attempts(5)).size(), 2u);
    auto a = take(k, "w-slow", 1ms);
    auto b = take(k, "w-slow", 1ms);
    ASSERT_TRUE(reap_until(k, 2));
    ASSERT_EQ(state(k, "a"), "waiting");

    // Completing takes the job out of the waiting list.
    EXPECT_EQ(engine().complete(k, "a", a.token, "late but fine"), Settle::done);
    EXPECT_EQ(state(k, "a"), "succeeded");
    EXPECT_EQ(raw().hget(k.job("a"), "result"), "late but fine");
    EXPECT_EQ(raw().lrange(k.waiting(0)), std::vector<std::string>{"b"});

    // Renewing takes it back to running.
    EXPECT_EQ(engine().renew(k, "b", b.token, 60000ms), RenewStatus::renewed);
    EXPECT_EQ(state(k, "b"), "running");
    EXPECT_TRUE(raw().zscore(k.running(), "b"));
    EXPECT_EQ(raw().zcard(k.priorities()), 0);
    EXPECT_FALSE(raw().exists(k.waiting(0)));
    EXPECT_TRUE(engine().claim(k).jobs.empty());
    EXPECT_EQ(engine().complete(k, "b", b.token), Settle::done);
    EXPECT_EQ(raw().counter(k, "succeeded"), 2);
}

TEST_F(Transitions, LapsedHolderIsRefusedOnceAnotherWorkerClaimed) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().max_attempts(5)), EnqueueStatus::created);
    auto old = take(k, "w-old", 1ms);
    ASSERT_TRUE(reap_until(k, 1));
    auto fresh = take(k, "w-new", 60000ms);
    ASSERT_EQ(fresh.id, "a");
    EXPECT_EQ(fresh.attempt, 2);

    EXPECT_EQ(engine().renew(k, "a", old.token), RenewStatus::lost);
    EXPECT_EQ(engine().complete(k, "a", old.token), Settle::refused);
    EXPECT_EQ(engine().fail(k, "a", old.token, 0ms).settle, Settle::refused);
    EXPECT_EQ(engine().release(k, "a", old.token), Settle::refused);
    EXPECT_EQ(raw().hget(k.job("a"), "token"), fresh.token);
    EXPECT_EQ(raw().hget(k.job("a"), "worker"), "w-new");
    EXPECT_EQ(state(k, "a"), "running");
    EXPECT_EQ(raw().counter(k, "succeeded"), 0);

    EXPECT_EQ(engine().complete(k, "a", fresh.token, "new"), Settle::done);
    EXPECT_EQ(raw().hget(k.job("a"), "result"), "new");
}

TEST_F(Transitions, LapsedHolderFailingLateCountsTheAttemptOnce) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().max_attempts(3)), EnqueueStatus::created);
    auto job = take(k, "w-slow", 1ms);
    ASSERT_TRUE(reap_until(k, 1));
    ASSERT_EQ(state(k, "a"), "waiting");
    ASSERT_EQ(raw().counter(k, "failed"), 1);  // the lapse

    // The frozen holder wakes up and reports that same attempt failed: its error is recorded,
    // the job retries, and the one attempt still counts as one failure.
    auto result = engine().fail(k, "a", job.token, 0ms, "boom");
    EXPECT_EQ(result.settle, Settle::done);
    EXPECT_EQ(raw().counter(k, "failed"), 1);
    EXPECT_EQ(error_reasons(k, "a"), (std::vector<std::string>{"lease", "exit"}));
    EXPECT_EQ(raw().hget(k.job("a"), "attempts"), "1");
}

TEST_F(Transitions, LapsedHolderMaySettleAJobTheReaperKilled) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().max_attempts(1)), EnqueueStatus::created);
    auto job = take(k, "w-slow", 1ms);
    ASSERT_TRUE(reap_until(k, 1));
    ASSERT_EQ(state(k, "a"), "dead");
    EXPECT_EQ(engine().complete(k, "a", job.token, "made it"), Settle::done);
    EXPECT_EQ(state(k, "a"), "succeeded");
    EXPECT_EQ(raw().zcard(k.dead()), 0);
}

// --- cancel and purge ----------------------------------------------------------------------------

TEST_F(Transitions, CancelEndsWaitingAndScheduledJobsAndFlagsRunningOnes) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "r"), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(k, "f"), EnqueueStatus::created);
    auto r = take(k);
    auto f = take(k);
    ASSERT_EQ(engine().complete(k, "f", f.token), Settle::done);
    ASSERT_EQ(engine().enqueue_one(k, "w", Options().priority(3)), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(k, "s", Options().delay(60000ms)), EnqueueStatus::created);

    auto results = engine().cancel(k, {"w", "s", "r", "f", "nope"}, 600000ms);
    ASSERT_EQ(results.size(), 5u);
    EXPECT_EQ(results[0].status, CancelStatus::cancelled);
    EXPECT_EQ(results[1].status, CancelStatus::cancelled);
    EXPECT_EQ(results[2].status, CancelStatus::flagged);
    EXPECT_EQ(results[2].state, JobState::running);
    EXPECT_EQ(results[3].status, CancelStatus::finished);
    EXPECT_EQ(results[3].state, JobState::succeeded);
    EXPECT_EQ(results[4].status, CancelStatus::unknown);
    EXPECT_FALSE(raw().exists(k.job("nope")));

    EXPECT_EQ(state(k, "w"), "cancelled");
    EXPECT_EQ(state(k, "s"), "cancelled");
    EXPECT_FALSE(raw().exists(k.waiting(3)));
    EXPECT_EQ(raw().zcard(k.priorities()), 0);
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
    EXPECT_GT(raw().pttl(k.job("w")), 0);  // kept for the result TTL
    EXPECT_EQ(state(k, "r"), "running");
    EXPECT_EQ(raw().hget(k.job("r"), "cancel"), "1");

    // Its holder's failure ends it cancelled: neither retried nor dead.
    auto outcome = engine().fail(k, "r", r.token, 0ms, "stopped");
    EXPECT_EQ(outcome.state, JobState::cancelled);
    EXPECT_EQ(state(k, "r"), "cancelled");
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
    EXPECT_EQ(raw().zcard(k.dead()), 0);
    EXPECT_EQ(raw().zcard(k.running()), 0);

    // Cancelling a cancelled job says so and changes nothing.
    results = engine().cancel(k, {"w"});
    EXPECT_EQ(results[0].status, CancelStatus::finished);
    EXPECT_EQ(results[0].state, JobState::cancelled);
    EXPECT_TRUE(engine().claim(k).jobs.empty());
}

TEST_F(Transitions, PurgeCancelsWaitingAndScheduledJobsInBatches) {
    auto k = keys();
    std::vector<std::pair<std::string, std::string>> waiting, scheduled;
    for (int i = 0; i < 25; ++i)
        waiting.emplace_back("w" + std::to_string(i), "x");
    for (int i = 0; i < 7; ++i)
        scheduled.emplace_back("s" + std::to_string(i), "x");
    ASSERT_EQ(engine().enqueue_one(k, "running"), EnqueueStatus::created);
    take(k);
    ASSERT_EQ(engine().enqueue(k, {waiting.begin(), waiting.begin() + 12}).size(), 12u);
    ASSERT_EQ(
        engine().enqueue(k, {waiting.begin() + 12, waiting.end()}, Options().priority(2)).size(),
        13u);
    ASSERT_EQ(engine().enqueue(k, scheduled, Options().delay(60000ms)).size(), 7u);

    long long total = 0;
    int calls = 0;
    for (bool more = true; more; ++calls) {
        ASSERT_LT(calls, 20);
        auto step = engine().purge(k, PurgeWhich::waiting, 10);
        EXPECT_LE(step.cancelled, 10);
        total += step.cancelled;
        more = step.more;
    }
    EXPECT_EQ(total, 25);
    EXPECT_GE(calls, 3);
    EXPECT_EQ(raw().zcard(k.priorities()), 0);
    EXPECT_EQ(raw().zcard(k.scheduled()), 7);  // --waiting leaves scheduled jobs
    for (int i = 0; i < 25; ++i)
        EXPECT_EQ(state(k, "w" + std::to_string(i)), "cancelled");

    total = 0;
    calls = 0;
    for (bool more = true; more; ++calls) {
        ASSERT_LT(calls, 20);
        auto step = engine().purge(k, PurgeWhich::both, 5);
        EXPECT_LE(step.cancelled, 5);
        total += step.cancelled;
        more = step.more;
    }
    EXPECT_EQ(total, 7);
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
    for (int i = 0; i < 7; ++i)
        EXPECT_EQ(state(k, "s" + std::to_string(i)), "cancelled");
    EXPECT_EQ(state(k, "running"), "running");  // purge never touches running jobs
    EXPECT_EQ(engine().purge(k, PurgeWhich::both, 5).cancelled, 0);
}

TEST_F(Transitions, PurgeTreatsDueScheduledJobsAsWaiting) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "due", Options().delay(50ms)), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(k, "later", Options().delay(60000ms)), EnqueueStatus::created);
    ASSERT_TRUE(server_time_passes(*raw().zscore(k.scheduled(), "due")));
    auto stats = engine().stats(k);
    ASSERT_EQ(stats.waiting, 1);  // what a user sees in workq-status
    ASSERT_EQ(stats.scheduled, 1);

    auto step = engine().purge(k, PurgeWhich::scheduled, 10);
    EXPECT_EQ(step.cancelled, 1);
    EXPECT_FALSE(step.more);
    EXPECT_EQ(state(k, "later"), "cancelled");
    EXPECT_EQ(state(k, "due"), "waiting");

    step = engine().purge(k, PurgeWhich::waiting, 10);
    EXPECT_EQ(step.cancelled, 1);
    EXPECT_EQ(state(k, "due"), "cancelled");
    EXPECT_TRUE(engine().claim(k).jobs.empty());
}

// --- dead letters --------------------------------------------------------------------------------

TEST_F(Transitions, RequeueResetsAttemptsAndRunsTheJobAgain) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().max_attempts(2)), EnqueueStatus::created);
    auto first = take(k);
    ASSERT_EQ(engine().fail(k, "a", first.token, 0ms).state, JobState::scheduled);
    auto second = take(k);
    ASSERT_EQ(engine().fail(k, "a", second.token, 0ms).state, JobState::dead);
    ASSERT_EQ(engine().enqueue_one(k, "alive"), EnqueueStatus::created);

    auto outcomes = engine().requeue(k, {"a", "alive", "nope"});
    ASSERT_EQ(outcomes.size(), 3u);
    EXPECT_TRUE(outcomes[0].ok);
    EXPECT_FALSE(outcomes[1].ok);  // not a dead letter
    EXPECT_FALSE(outcomes[2].ok);
    EXPECT_EQ(raw().zcard(k.dead()), 0);
    auto record = raw().hgetall(k.job("a"));
    EXPECT_EQ(record["state"], "waiting");
    EXPECT_EQ(record["attempts"], "0");
    EXPECT_EQ(record.count("token"), 0u);
    EXPECT_EQ(raw().lrange(k.waiting(0)), (std::vector<std::string>{"alive", "a"}));
    EXPECT_EQ(raw().llen(k.errors("a")), 2);  // history kept

    // Neither old token holds it.
    EXPECT_EQ(engine().complete(k, "a", second.token), Settle::refused);
    take(k);  // alive
    auto again = take(k);
    EXPECT_EQ(again.id, "a");
    EXPECT_EQ(again.attempt, 1);
    EXPECT_EQ(again.max_attempts, 2);
}

TEST_F(Transitions, RequeueAndDeleteTheOldestDeadLetters) {
    auto k = keys();
    for (std::string id : {"d1", "d2", "d3"}) {
        make_dead(k, id);
        // distinct times of death, so that "oldest" is well defined
        auto died = *raw().zscore(k.dead(), id);
        ASSERT_TRUE(server_time_passes(died));
    }
    auto requeued = engine().requeue(k, {}, 1);
    ASSERT_EQ(requeued.size(), 1u);
    EXPECT_EQ(requeued[0].id, "d1");
    EXPECT_EQ(state(k, "d1"), "waiting");
    auto deleted = engine().delete_dead(k, {}, 5);
    ASSERT_EQ(deleted.size(), 2u);
    EXPECT_EQ(raw().zcard(k.dead()), 0);
    EXPECT_FALSE(raw().exists(k.job("d2")));
    EXPECT_FALSE(raw().exists(k.job("d3")));
}

// SCRIPT FLUSH (or a restart) between calls: pipelined scripts that meet NOSCRIPT run again, in
// order, as EVAL, and the script is cached again for the calls after them.
TEST_F(Transitions, PipelinedScriptsRunAgainAfterTheServerLostItsScriptCache) {
    auto k = keys();
    connection().use_functions(false);  // EVALSHA, as on Redis 6.2 (FCALL: queue_functions_test)
    ASSERT_EQ(engine().enqueue_one(k, "warm"), EnqueueStatus::created);  // the script is cached
    raw().call({"SCRIPT", "FLUSH"});
    std::vector<queue::ScriptCall> calls;
    const std::vector<std::string> ids{"p0", "p1", "p2"};
    for (const auto& id : ids) {
        std::vector<queue::NewJob> jobs{{id, "x"}};
        calls.push_back(queue::enqueue_call(k, Options(), jobs));
        queue::append(connection(), calls.back());
    }
    auto replies = connection().read_script_replies();
    ASSERT_EQ(replies.size(), 3u);
    for (std::size_t c = 0; c < 3; ++c)
        EXPECT_FALSE(replies[c].is_error()) << replies[c].text;
    EXPECT_EQ(raw().lrange(k.waiting(0)), (std::vector<std::string>{"warm", "p0", "p1", "p2"}));
    auto cached = raw().call({"SCRIPT", "EXISTS", std::string(calls[0].script->sha1)});
    EXPECT_EQ(cached.at(0).as_integer(), 1);
}

TEST_F(Transitions, RequeueKeepsDeadALetterWhoseUniqueKeyALiveJobHolds) {
    auto k = keys();
    EnqueueOptions unique = Options().max_attempts(1).unique_key("u");
    ASSERT_EQ(engine().enqueue_one(k, "old", unique), EnqueueStatus::created);
    auto old = take(k);
    ASSERT_EQ(engine().fail(k, "old", old.token, std::nullopt).state, JobState::dead);
    ASSERT_EQ(engine().enqueue_one(k, "new", unique), EnqueueStatus::created);  // key free again

    // While "new" lives, "old" stays dead, in its place, with its time of death.
    auto died = raw().zscore(k.dead(), "old");
    for (const auto& outcome : {engine().requeue(k, {"old"})[0], engine().requeue(k, {}, 5)[0]}) {
        EXPECT_EQ(outcome.id, "old");
        EXPECT_EQ(outcome.status, queue::RequeueStatus::unique_held);
        EXPECT_FALSE(outcome.ok);
        EXPECT_EQ(outcome.holder, "new");
    }
    EXPECT_EQ(raw().zscore(k.dead(), "old"), died);
    EXPECT_EQ(state(k, "old"), "dead");
    EXPECT_EQ(raw().get(k.unique("u")), "new");
    EXPECT_EQ(raw().lrange(k.waiting(0)), (std::vector<std::string>{"new"}));
    // The skip steps over letters a caller has seen stay dead.
    EXPECT_TRUE(engine().requeue(k, {}, 5, 1).empty());

    // Once "new" has ended, "old" comes back and holds the key.
    auto fresh = take(k);
    ASSERT_EQ(engine().complete(k, "new", fresh.token), Settle::done);
    auto outcome = engine().requeue(k, {"old"})[0];
    EXPECT_EQ(outcome.status, queue::RequeueStatus::requeued);
    EXPECT_EQ(state(k, "old"), "waiting");
    EXPECT_EQ(raw().get(k.unique("u")), "old");
    EXPECT_EQ(engine().enqueue(k, {{"third", "x"}}, unique)[0].id, "old");
}

TEST_F(Transitions, RequeueOfACorruptDeadLetterKeepsItDeadInItsPlace) {
    auto k = keys();
    make_dead(k, "bad");
    raw().call({"HDEL", k.job("bad"), "payload"});
    auto died = raw().zscore(k.dead(), "bad");
    auto outcome = engine().requeue(k, {}, 5)[0];
    EXPECT_EQ(outcome.id, "bad");
    EXPECT_EQ(outcome.status, queue::RequeueStatus::corrupt);
    EXPECT_EQ(raw().zscore(k.dead(), "bad"), died);
    EXPECT_EQ(state(k, "bad"), "dead");
}

TEST_F(Transitions, DeleteRemovesADeadLetterForGood) {
    auto k = keys();
    make_dead(k, "a");
    ASSERT_EQ(engine().enqueue_one(k, "alive"), EnqueueStatus::created);
    auto outcomes = engine().delete_dead(k, {"a", "alive"});
    ASSERT_EQ(outcomes.size(), 2u);
    EXPECT_TRUE(outcomes[0].ok);
    EXPECT_FALSE(outcomes[1].ok);
    EXPECT_FALSE(raw().exists(k.job("a")));
    EXPECT_FALSE(raw().exists(k.errors("a")));
    EXPECT_EQ(raw().zcard(k.dead()), 0);
    EXPECT_EQ(state(k, "alive"), "waiting");
    EXPECT_FALSE(engine().delete_dead(k, {"a"})[0].ok);
    EXPECT_FALSE(engine().requeue(k, {"a"})[0].ok);
    EXPECT_FALSE(raw().exists(k.job("a")));
}

TEST_F(Transitions, DeadLetterCapByCountTrimsTheOldestAndCountsThem) {
    auto k = keys();
    EXPECT_EQ(engine().dead_cap(k, 3, 0ms), 0);
    for (int i = 0; i < 5; ++i)
        make_dead(k, "d" + std::to_string(i));
    EXPECT_EQ(raw().zrange(k.dead()), (std::vector<std::string>{"d2", "d3", "d4"}));
    EXPECT_FALSE(raw().exists(k.job("d0")));
    EXPECT_FALSE(raw().exists(k.errors("d1")));
    EXPECT_EQ(raw().counter(k, "trimmed"), 2);
    EXPECT_EQ(engine().stats(k).trimmed, 2);

    // Lowering the cap applies at once.
    EXPECT_EQ(engine().dead_cap(k, 1, 0ms), 4);
    EXPECT_EQ(raw().zrange(k.dead()), std::vector<std::string>{"d4"});
    // No cap: nothing more goes.
    EXPECT_EQ(engine().dead_cap(k, 0, 0ms), 4);
    make_dead(k, "d5");
    EXPECT_EQ(raw().zcard(k.dead()), 2);
    EXPECT_EQ(raw().counter(k, "trimmed"), 4);
}

TEST_F(Transitions, DeadLetterCapByAgeTrimsOldOnesAndCountsThem) {
    auto k = keys();
    EXPECT_EQ(engine().dead_cap(k, 0, 300ms), 0);
    make_dead(k, "old1");
    make_dead(k, "old2");
    auto died = *raw().zscore(k.dead(), "old2");
    EXPECT_EQ(raw().zcard(k.dead()), 2);
    ASSERT_TRUE(server_time_passes(died + 300));
    make_dead(k, "young");  // a death applies the cap
    EXPECT_EQ(raw().zrange(k.dead()), std::vector<std::string>{"young"});
    EXPECT_FALSE(raw().exists(k.job("old1")));
    EXPECT_EQ(raw().counter(k, "trimmed"), 2);

    ASSERT_TRUE(server_time_passes(*raw().zscore(k.dead(), "young") + 300));
    EXPECT_EQ(engine().dead_cap(k, 0, 300ms), 3);  // setting the cap applies it too
    EXPECT_EQ(raw().zcard(k.dead()), 0);
}

TEST_F(Transitions, DeadLettersAgeOutWhileNoneDie) {
    auto k = keys();
    EXPECT_EQ(engine().dead_cap(k, 0, 300ms), 0);
    make_dead(k, "old");
    ASSERT_TRUE(server_time_passes(*raw().zscore(k.dead(), "old") + 300));
    // No other job dies; the periodic reap applies the cap.
    EXPECT_EQ(engine().reap(k), 0);
    EXPECT_EQ(raw().zcard(k.dead()), 0);
    EXPECT_FALSE(raw().exists(k.job("old")));
    EXPECT_EQ(raw().counter(k, "trimmed"), 1);
}

// --- reading -------------------------------------------------------------------------------------

TEST_F(Transitions, StatsCountEveryStateAndTheOldestWaitingAge) {
    auto k = keys();
    ASSERT_EQ(engine()
                  .enqueue(k, {{"run", "1"}, {"ok", "2"}, {"die", "3"}}, Options().max_attempts(1))
                  .size(),
              3u);
    auto claimed = engine().claim(k, "w1", 30000ms, 3);
    ASSERT_EQ(claimed.jobs.size(), 3u);
    ASSERT_EQ(engine().complete(k, "ok", claimed.jobs[1].token), Settle::done);
    ASSERT_EQ(engine().fail(k, "die", claimed.jobs[2].token, 0ms).state, JobState::dead);
    ASSERT_EQ(engine().enqueue_one(k, "w1"), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(k, "w2", Options().priority(4)), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(k, "later", Options().delay(60000ms)), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(k, "due", Options().delay(50ms)), EnqueueStatus::created);
    ASSERT_TRUE(server_time_passes(*raw().zscore(k.scheduled(), "due")));
    // A fresh job has no `ready` field: it has been ready since it was created.
    EXPECT_FALSE(raw().hget(k.job("w1"), "ready"));
    auto ready = std::stoll(*raw().hget(k.job("w1"), "created"));

    auto before = raw().server_now_ms();
    auto stats = engine().stats(k);
    auto after = raw().server_now_ms();
    EXPECT_EQ(stats.waiting, 3);  // w1, w2 and the scheduled job that is due
    EXPECT_EQ(stats.scheduled, 1);
    EXPECT_EQ(stats.running, 1);
    EXPECT_EQ(stats.dead, 1);
    EXPECT_EQ(stats.succeeded, 1);
    EXPECT_EQ(stats.failed, 1);
    EXPECT_FALSE(stats.paused);
    EXPECT_EQ(stats.data_version, 1);
    EXPECT_EQ(stats.trimmed, 0);
    // The same, counted on the raw keys.
    EXPECT_EQ(raw().llen(k.waiting(0)) + raw().llen(k.waiting(4)), 2);
    EXPECT_EQ(raw().zcard(k.scheduled()), 2);
    EXPECT_EQ(raw().zcard(k.running()), 1);
    EXPECT_EQ(raw().zcard(k.dead()), 1);
    EXPECT_EQ(raw().counter(k, "succeeded"), 1);
    EXPECT_EQ(raw().counter(k, "failed"), 1);
    // w1 has waited longest.
    ASSERT_TRUE(stats.oldest_waiting_age);
    EXPECT_GE(stats.oldest_waiting_age->count(), before - ready);
    EXPECT_LE(stats.oldest_waiting_age->count(), after - ready);

    // Paused shows; an empty queue has no oldest waiting job and no data version yet.
    ASSERT_EQ(engine().set_paused(k, true), 1);
    EXPECT_TRUE(engine().stats(k).paused);
    auto empty = engine().stats(keys("empty"));
    EXPECT_FALSE(empty.oldest_waiting_age);
    EXPECT_EQ(empty.waiting + empty.scheduled + empty.running + empty.dead, 0);
    EXPECT_EQ(empty.data_version, 0);
}

TEST_F(Transitions, OldestWaitingAgeGrowsWithTheWait) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    auto created = std::stoll(*raw().hget(k.job("a"), "created"));
    ASSERT_TRUE(server_time_passes(created + 200));
    ASSERT_EQ(engine().enqueue_one(k, "b"), EnqueueStatus::created);
    auto stats = engine().stats(k);
    ASSERT_TRUE(stats.oldest_waiting_age);
    EXPECT_GE(stats.oldest_waiting_age->count(), 200);
    EXPECT_LT(stats.oldest_waiting_age->count(), 60000);
}

TEST_F(Transitions, JobInfoShowsStateAttemptsPayloadAndErrors) {
    auto k = keys();
    EXPECT_FALSE(engine().job_info(k, "nope"));
    ASSERT_EQ(engine().enqueue_one(k, "a", Options().priority(2).max_attempts(4).timeout(900ms),
                                   std::string("pay\0load", 8)),
              EnqueueStatus::created);
    auto info = engine().job_info(k, "a");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->state, JobState::waiting);
    EXPECT_EQ(info->attempts, 0);
    EXPECT_EQ(info->max_attempts, 4);
    EXPECT_EQ(info->priority, 2);
    EXPECT_EQ(info->timeout, Millis(900));
    EXPECT_EQ(info->payload, std::string("pay\0load", 8));
    EXPECT_EQ(info->queue, "q");

    auto job = take(k, "w-9");
    info = engine().job_info(k, "a", false);
    EXPECT_EQ(info->state, JobState::running);
    EXPECT_EQ(info->worker, "w-9");
    EXPECT_EQ(info->lease_ms, raw().zscore(k.running(), "a"));
    EXPECT_FALSE(info->payload);  // only with details

    auto outcome = engine().fail(k, "a", job.token, 60000ms, "boom");
    info = engine().job_info(k, "a");
    EXPECT_EQ(info->state, JobState::scheduled);
    EXPECT_EQ(info->due_ms, outcome.due_ms);
    EXPECT_EQ(info->attempts, 1);
    EXPECT_EQ(info->error, "boom");
    ASSERT_EQ(info->errors.size(), 1u);
    EXPECT_EQ(info->errors[0].attempt, 1);
    EXPECT_EQ(info->errors[0].reason, "exit");
    EXPECT_EQ(info->errors[0].error, "boom");

    // A scheduled job that is due shows as waiting.
    raw().call({"ZADD", k.scheduled(), "1", "a"});
    EXPECT_EQ(engine().job_info(k, "a")->state, JobState::waiting);
}

// --- one round: the successes ride with the claim (README, "One round") --------------------------

namespace {
// A claim of `k` carrying `successes` (each: id, token, result, dropped) of that one queue.
queue::ClaimResult claim_settling(Engine& engine, const std::vector<queue::QueueKeys>& queues,
                                  std::vector<queue::ClaimSuccess> successes,
                                  std::size_t max_jobs = 1, Millis ttl = 600000ms) {
    return queue::parse_claim(engine.run(queue::claim_call(
        queues, "w1", "round." + std::to_string(successes.size()) + "." + std::to_string(max_jobs),
        30000ms, max_jobs, 0, successes, ttl)));
}
}  // namespace

TEST_F(Transitions, ARoundSettlesItsSuccessesAndClaimsTheNextJobsInOneCall) {
    auto k = keys();
    for (auto id : {"a", "b", "c", "d"})
        ASSERT_EQ(engine().enqueue_one(k, id), EnqueueStatus::created);
    auto a = take(k), b = take(k);
    auto round = claim_settling(
        engine(), {k}, {{0, {"a", a.token, "result a"}}, {0, {"b", b.token, "cut", 3}}}, 2);
    EXPECT_EQ(round.settled, (std::vector<Settle>{Settle::done, Settle::done}));
    ASSERT_EQ(round.jobs.size(), 2u);
    EXPECT_EQ(round.jobs[0].id, "c");
    EXPECT_EQ(round.jobs[1].id, "d");
    EXPECT_EQ(state(k, "a"), "succeeded");
    EXPECT_EQ(raw().hget(k.job("a"), "result"), "result a");
    EXPECT_EQ(raw().hget(k.job("a"), "settled"), a.token);
    EXPECT_EQ(raw().hget(k.job("b"), "truncated"), "3");
    EXPECT_FALSE(raw().hget(k.job("a"), "lease"));
    EXPECT_GT(raw().pttl(k.job("a")), 0);  // kept for the result TTL
    EXPECT_EQ(raw().zrange(k.running()), (std::vector<std::string>{"c", "d"}));
    EXPECT_EQ(raw().counter(k, "succeeded"), 2);
    EXPECT_EQ(engine().stats(k).succeeded_last_minute, 2);
    EXPECT_EQ(state(k, "c"), "running");

    // Nothing to claim: the successes are settled all the same; no success: `settled` is empty.
    round = claim_settling(engine(), {k}, {{0, {"c", round.jobs[0].token, "c"}}}, 1);
    EXPECT_EQ(round.settled, std::vector<Settle>{Settle::done});
    EXPECT_TRUE(round.jobs.empty());
    EXPECT_EQ(state(k, "c"), "succeeded");
    EXPECT_TRUE(engine().claim(k).settled.empty());
}

// --claim-ahead and the round together: the success of a job claimed ahead may ride in a round
// before its start notice (flush_starts) reaches the server. The settle counts the run; the late
// notice changes nothing; the same round marks the jobs it claims past (max - ahead).
TEST_F(Transitions, ARoundCountsTheRunOfAJobClaimedAheadWhoseStartNoticeIsLate) {
    auto k = keys();
    ASSERT_EQ(
        engine()
            .enqueue(k, {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}, Options().max_attempts(1))
            .size(),
        4u);
    auto first = engine().claim_ahead(k, 2, 1).jobs;
    ASSERT_EQ(first.size(), 2u);
    ASSERT_FALSE(first[0].ahead);
    ASSERT_TRUE(first[1].ahead);
    EXPECT_EQ(raw().hget(k.job("b"), "attempts"), std::nullopt);
    // b went to a handler and finished; its notice is still in the outbox. A round carries a's
    // and b's successes and claims two more, one of them ahead.
    std::vector<queue::QueueKeys> queues{k};
    std::vector<queue::ClaimSuccess> successes{{0, {"a", first[0].token, "ra"}},
                                               {0, {"b", first[1].token, "rb"}}};
    auto round = queue::parse_claim(engine().run(
        queue::claim_call(queues, "w1", "round-ahead", 30000ms, 2, 1, successes, 600000ms)));
    EXPECT_EQ(round.settled, (std::vector<Settle>{Settle::done, Settle::done}));
    EXPECT_EQ(raw().hget(k.job("a"), "attempts"), "1");
    EXPECT_EQ(raw().hget(k.job("b"), "attempts"), "1");  // counted by the settle
    EXPECT_EQ(raw().hget(k.job("b"), "ahead"), "");
    EXPECT_EQ(state(k, "b"), "succeeded");
    ASSERT_EQ(round.jobs.size(), 2u);
    EXPECT_EQ(round.jobs[0].id, "c");
    EXPECT_FALSE(round.jobs[0].ahead);
    EXPECT_EQ(round.jobs[1].id, "d");
    EXPECT_TRUE(round.jobs[1].ahead);
    EXPECT_EQ(raw().hget(k.job("d"), "ahead"), "1");
    EXPECT_EQ(raw().hget(k.job("d"), "attempts"), std::nullopt);
    // The late notice: the job is settled, nothing changes (not counted twice).
    EXPECT_EQ(engine().start(k, "b", first[1].token), 0);
    EXPECT_EQ(raw().hget(k.job("b"), "attempts"), "1");
    EXPECT_EQ(raw().counter(k, "succeeded"), 2);
    // A notice that came first: the settle in a round does not count the run again.
    EXPECT_EQ(engine().start(k, "d", round.jobs[1].token), 1);
    std::vector<queue::ClaimSuccess> more{{0, {"d", round.jobs[1].token, "rd"}}};
    auto last = queue::parse_claim(engine().run(
        queue::claim_call(queues, "w1", "round-ahead-2", 30000ms, 1, 1, more, 600000ms)));
    EXPECT_EQ(last.settled, std::vector<Settle>{Settle::done});
    EXPECT_EQ(raw().hget(k.job("d"), "attempts"), "1");
    EXPECT_TRUE(last.jobs.empty());
    EXPECT_EQ(engine().stats(k).claimed_ahead, 0);
}

TEST_F(Transitions, ARoundRefusesAStaleTokenAndStillClaims) {
    auto k = keys();
    for (auto id : {"a", "b"})
        ASSERT_EQ(engine().enqueue_one(k, id), EnqueueStatus::created);
    auto a = take(k, "w1", 1ms);
    // Its lease lapsed and another worker took it: the first holder's token is stale.
    ASSERT_TRUE(server_time_passes(raw().server_now_ms() + 5));
    ASSERT_TRUE(reap_until(k, 1));
    auto again = take(k, "w2");
    ASSERT_EQ(again.id, "a");
    auto round = claim_settling(
        engine(), {k}, {{0, {"a", a.token, "stale"}}, {0, {"gone", "token", "no such job"}}});
    EXPECT_EQ(round.settled, (std::vector<Settle>{Settle::refused, Settle::refused}));
    ASSERT_EQ(round.jobs.size(), 1u);
    EXPECT_EQ(round.jobs[0].id, "b");
    EXPECT_EQ(state(k, "a"), "running");
    EXPECT_EQ(raw().hget(k.job("a"), "token"), again.token);
    EXPECT_FALSE(raw().hget(k.job("a"), "result"));
    EXPECT_EQ(raw().counter(k, "succeeded"), 0);
    EXPECT_FALSE(raw().exists(k.job("gone")));
}

TEST_F(Transitions, ARoundRetriedIsADuplicateForItsSuccessesAndClaimsAfresh) {
    auto k = keys();
    for (auto id : {"a", "b", "c"})
        ASSERT_EQ(engine().enqueue_one(k, id), EnqueueStatus::created);
    auto a = take(k);
    std::vector<queue::ClaimSuccess> successes{{0, {"a", a.token, "first"}}};
    auto round = claim_settling(engine(), {k}, successes);
    EXPECT_EQ(round.settled, std::vector<Settle>{Settle::done});
    // The same success again (its reply was lost): nothing changes, counted once.
    successes[0].job.result = "second";
    auto retried = claim_settling(engine(), {k}, successes);
    EXPECT_EQ(retried.settled, std::vector<Settle>{Settle::duplicate});
    EXPECT_EQ(raw().hget(k.job("a"), "result"), "first");
    EXPECT_EQ(raw().counter(k, "succeeded"), 1);
    // And by plain complete: a duplicate too.
    EXPECT_EQ(engine().complete(k, "a", a.token, "third"), Settle::duplicate);
    ASSERT_EQ(round.jobs.size(), 1u);
    ASSERT_EQ(retried.jobs.size(), 1u);
    EXPECT_EQ(round.jobs[0].id, "b");
    EXPECT_EQ(retried.jobs[0].id, "c");
}

TEST_F(Transitions, ARoundQuarantinesACorruptRecordKeepsItsResultAndClaims) {
    auto k = keys();
    for (auto id : {"run", "next"})
        ASSERT_EQ(engine().enqueue_one(k, id), EnqueueStatus::created);
    auto held = take(k);
    raw().call({"DEL", k.job("run")});
    raw().call({"SET", k.job("run"), "garbage"});
    auto round = claim_settling(engine(), {k}, {{0, {"run", held.token, "the result"}}});
    EXPECT_EQ(round.settled, std::vector<Settle>{Settle::quarantined});
    EXPECT_EQ(state(k, "run"), "dead");
    EXPECT_EQ(raw().hget(k.job("run"), "reason"), "corrupt");
    EXPECT_EQ(raw().hget(k.job("run"), "result"), "the result");
    EXPECT_EQ(raw().get(k.prefix() + "corrupt:run"), "garbage");
    EXPECT_FALSE(raw().zscore(k.running(), "run"));
    ASSERT_EQ(round.jobs.size(), 1u);
    EXPECT_EQ(round.jobs[0].id, "next");
}

TEST_F(Transitions, ARoundOverSeveralQueuesSettlesEachInItsQueueAndSkipsADamagedOne) {
    auto q0 = keys("q0"), q1 = keys("q1"), q2 = keys("q2");
    ASSERT_EQ(engine().enqueue(q0, {{"a0", "0"}, {"b0", "0"}}).size(), 2u);
    ASSERT_EQ(engine().enqueue(q1, {{"a1", "1"}, {"b1", "1"}}).size(), 2u);
    ASSERT_EQ(engine().enqueue(q2, {{"a2", "2"}, {"b2", "2"}}).size(), 2u);
    auto a0 = take(q0), a1 = take(q1), a2 = take(q2);
    // q1's priorities hold another type: the claim skips q1, its success is settled all the
    // same (complete would settle it); q2's meta is no hash: its success cannot be judged.
    raw().call({"SET", q1.priorities(), "x"});
    raw().call({"DEL", q2.meta()});
    raw().call({"SET", q2.meta(), "x"});
    auto round = claim_settling(
        engine(), {q0, q1, q2},
        {{2, {"a2", a2.token, "r2"}}, {0, {"a0", a0.token, "r0"}}, {1, {"a1", a1.token, "r1"}}}, 5);
    EXPECT_EQ(round.settled, (std::vector<Settle>{Settle::refused, Settle::done, Settle::done}));
    EXPECT_EQ(state(q0, "a0"), "succeeded");
    EXPECT_EQ(state(q1, "a1"), "succeeded");
    EXPECT_EQ(state(q2, "a2"), "running");
    EXPECT_FALSE(raw().hget(q2.job("a2"), "result"));
    EXPECT_EQ(raw().counter(q0, "succeeded"), 1);
    EXPECT_EQ(raw().counter(q1, "succeeded"), 1);
    ASSERT_EQ(round.jobs.size(), 1u);
    EXPECT_EQ(round.jobs[0].id, "b0");
    ASSERT_EQ(round.damaged.size(), 2u);
    EXPECT_EQ(round.damaged[0].queue_index, 1u);
    EXPECT_EQ(round.damaged[1].queue_index, 2u);
    EXPECT_EQ(raw().lrange(q1.waiting(0)), std::vector<std::string>{"b1"});
}

TEST_F(Transitions, ARoundOnANewerDataModelSettlesNothingAndClaimsNothing) {
    auto k = keys(), other = keys("other");
    for (auto id : {"a", "b"})
        ASSERT_EQ(engine().enqueue_one(other, id), EnqueueStatus::created);
    auto a = take(other);
    raw().call({"HSET", k.meta(), "version", "99"});
    EXPECT_THROW(claim_settling(engine(), {other, k}, {{0, {"a", a.token, "r"}}}),
                 queue::DataVersionError);
    EXPECT_EQ(state(other, "a"), "running");
    EXPECT_EQ(raw().llen(other.waiting(0)), 1);
    // A malformed call (a success naming no queue of the call) is refused before any write.
    EXPECT_THROW(claim_settling(engine(), {other}, {{3, {"a", a.token, "r"}}}), RedisError);
    EXPECT_EQ(state(other, "a"), "running");
}

// --- versioned data ------------------------------------------------------------------------------

TEST_F(Transitions, NewerDataVersionIsRefusedAndNothingIsTouched) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "a"), EnqueueStatus::created);
    ASSERT_EQ(engine().enqueue_one(k, "b"), EnqueueStatus::created);
    auto held = take(k);
    raw().call({"HSET", k.meta(), "version", "99"});

    auto expect_refused = [&](const char* what, auto&& transition) {
        try {
            transition();
            ADD_FAILURE() << what << ": not refused";
        } catch (const queue::DataVersionError& error) {
            EXPECT_NE(std::string(error.what()).find("(data model 99; this workq knows 1)"),
                      std::string::npos)
                << error.what();
        }
    };
    expect_refused("enqueue", [&] { engine().enqueue_one(k, "c"); });
    expect_refused("claim", [&] { engine().claim(k); });
    expect_refused("claim of two queues", [&] {
        engine().claim({keys("other"), k}, "w1", 1000ms, 5);
    });
    expect_refused("complete", [&] { engine().complete(k, "a", held.token); });
    expect_refused("fail", [&] { engine().fail(k, "a", held.token, 0ms); });
    expect_refused("release", [&] { engine().release(k, "a", held.token); });
    expect_refused("renew", [&] { engine().renew(k, "a", held.token); });
    expect_refused("reap", [&] { engine().reap(k); });
    expect_refused("cancel", [&] { engine().cancel(k, {"b"}); });
    expect_refused("purge", [&] { engine().purge(k, PurgeWhich::both, 10); });
    expect_refused("pause", [&] { engine().set_paused(k, true); });
    expect_refused("requeue", [&] { engine().requeue(k, {"a"}); });
    expect_refused("delete", [&] { engine().delete_dead(k, {"a"}); });
    expect_refused("dead cap", [&] { engine().dead_cap(k, 1, 0ms); });

    EXPECT_FALSE(raw().exists(k.job("c")));
    EXPECT_EQ(raw().lrange(k.waiting(0)), std::vector<std::string>{"b"});
    EXPECT_EQ(state(k, "a"), "running");
    EXPECT_EQ(raw().hget(k.job("a"), "token"), held.token);
    EXPECT_FALSE(raw().hget(k.meta(), "paused"));
    EXPECT_EQ(raw().hget(k.meta(), "version"), "99");
    EXPECT_EQ(engine().stats(k).data_version, 99);  // reading tells which version it is
}

// ---- limits (workq-queue limit)
// ------------------------------------------------------------------

TEST(RateLimitSyntax, ReadsNPerDurationAndRefusesTheRest) {
    auto rate = queue::parse_rate_limit("20/1s", "--rate");
    EXPECT_EQ(rate.rate, 20);
    EXPECT_EQ(rate.window, 1000ms);
    EXPECT_EQ(queue::parse_rate_limit("600/1m", "--rate").window, 60000ms);
    EXPECT_EQ(queue::parse_rate_limit("5/250ms", "--rate").window, 250ms);
    EXPECT_EQ(queue::parse_rate_limit("0", "--rate").rate, 0);
    EXPECT_EQ(queue::parse_rate_limit("0/1s", "--rate").rate, 0);
    EXPECT_EQ(queue::format_rate_limit(20, 1000ms), "20/1s");
    EXPECT_EQ(queue::format_rate_limit(600, 90000ms), "600/1m30s");
    EXPECT_EQ(queue::format_rate_limit(0, 0ms), "");
    for (const char* bad : {"", "10", "/1s", "x/1s", "-1/1s", "1.5/1s", "10/", "10/0", "10/0s",
                            "10/abc", "10/-1s", "100001/1s", "10/1s/2", " 10/1s"})
        EXPECT_THROW(queue::parse_rate_limit(bad, "--rate"), UsageError) << bad;
    try {
        queue::parse_rate_limit("10/x", "--rate");
    } catch (const UsageError& error) {
        EXPECT_NE(std::string(error.what()).find("--rate '10/x'"), std::string::npos)
            << error.what();
    }
}

class Limits : public Transitions {
  protected:
    queue::QueueLimits set(const queue::QueueKeys& k, std::optional<queue::RateLimit> rate,
                           std::optional<long long> concurrency) {
        return queue::parse_limits(engine().run(queue::set_limits_call(k, rate, concurrency)));
    }
    void enqueue(const queue::QueueKeys& k, int n) {
        for (int i = 0; i < n; ++i)
            ASSERT_EQ(engine().enqueue_one(k, "j" + std::to_string(i)), EnqueueStatus::created);
    }
};

TEST_F(Limits, RateLimitStartsAtMostNPerWindowAndSaysWhenTheNextCan) {
    auto k = keys();
    auto limits = set(k, queue::RateLimit{3, 60000ms}, std::nullopt);
    EXPECT_EQ(limits.rate, 3);
    EXPECT_EQ(limits.window, 60000ms);
    EXPECT_EQ(limits.concurrency, 0);
    enqueue(k, 5);
    auto first = engine().claim(k, "w1", 30000ms, 10);
    ASSERT_EQ(first.jobs.size(), 3u);
    ASSERT_EQ(first.holds.size(), 1u);
    EXPECT_EQ(first.holds[0].kind, queue::HoldKind::rate);
    EXPECT_GT(first.holds[0].wait, 59000ms);
    EXPECT_LE(first.holds[0].wait, 60000ms);
    EXPECT_EQ(raw().call({"ZCARD", k.prefix() + "starts"}).as_integer(), 3);
    EXPECT_EQ(raw().llen(k.wake()), 0);  // held back: no wake-up passed on to another worker
    // Ending jobs frees no start: the rate counts starts, not running jobs.
    EXPECT_EQ(engine().complete(k, first.jobs[0].id, first.jobs[0].token, "ok"), Settle::done);
    auto second = engine().claim(k, "w2", 30000ms, 10);
    EXPECT_TRUE(second.jobs.empty());
    EXPECT_EQ(second.holds[0].kind, queue::HoldKind::rate);
    EXPECT_EQ(raw().lrange(k.waiting(0)).size(), 2u);
}

TEST_F(Limits, TheWindowSlidesStartByStart) {
    auto k = keys();
    set(k, queue::RateLimit{2, 400ms}, std::nullopt);
    enqueue(k, 6);
    auto first = engine().claim(k, "w1", 30000ms, 1);
    ASSERT_EQ(first.jobs.size(), 1u);
    auto t1 = *raw().zscore(k.prefix() + "starts", first.jobs[0].token);
    auto second = engine().claim(k, "w1", 30000ms, 5);
    ASSERT_EQ(second.jobs.size(), 1u);
    auto t2 = *raw().zscore(k.prefix() + "starts", second.jobs[0].token);
    // Held until the first start leaves the window (then one place is free: the hint is for as
    // many as wanted, at most the limit, so two: when the second leaves).
    ASSERT_EQ(second.holds[0].kind, queue::HoldKind::rate);
    auto hinted = raw().server_now_ms() + second.holds[0].wait.count();
    EXPECT_LE(hinted, static_cast<long long>(t2) + 400 + 50);
    ASSERT_TRUE(server_time_passes(static_cast<long long>(t1) + 400));
    auto third = engine().claim(k, "w1", 30000ms, 5);
    // Exactly the places whose start left the window: never more than 2 in any 400 ms.
    auto now = raw().server_now_ms();
    auto in_window = now < static_cast<long long>(t2) + 400 ? 1u : 0u;
    EXPECT_EQ(third.jobs.size(), 2u - in_window);
}

TEST_F(Limits, ConcurrencyCountsRunningJobsAndAnEndFreesAPlaceAndWakes) {
    auto k = keys();
    set(k, std::nullopt, 2);
    enqueue(k, 6);
    auto first = engine().claim(k, "w1", 30000ms, 10);
    ASSERT_EQ(first.jobs.size(), 2u);
    EXPECT_EQ(first.holds[0].kind, queue::HoldKind::concurrency);
    auto held = engine().claim(k, "w2", 30000ms, 10);
    EXPECT_TRUE(held.jobs.empty());
    EXPECT_EQ(held.holds[0].kind, queue::HoldKind::concurrency);
    EXPECT_EQ(raw().llen(k.wake()), 0);
    // A success frees its place at once and wakes a waiter.
    EXPECT_EQ(engine().complete(k, first.jobs[0].id, first.jobs[0].token, "ok"), Settle::done);
    EXPECT_EQ(raw().llen(k.wake()), 1);
    auto next = engine().claim(k, "w2", 30000ms, 10);
    ASSERT_EQ(next.jobs.size(), 1u);
    // A failure and a release free theirs too.
    engine().fail(k, first.jobs[1].id, first.jobs[1].token, 60000ms);
    EXPECT_EQ(engine().claim(k, "w3", 30000ms, 10).jobs.size(), 1u);
    auto running = raw().call({"ZRANGE", k.running(), "0", "-1"}).as_array();
    ASSERT_EQ(running.size(), 2u);
    auto id = running[0].as_string();
    auto token = *raw().hget(k.job(id), "token");
    EXPECT_EQ(engine().release(k, id, token), Settle::done);
    EXPECT_EQ(engine().claim(k, "w3", 30000ms, 10).jobs.size(), 1u);
    EXPECT_EQ(engine().stats(k).running, 2);
}

TEST_F(Limits, AHeldQueueDoesNotHoldTheNextOne) {
    auto q1 = keys("q1");
    auto q2 = keys("q2");
    set(q1, queue::RateLimit{1, 60000ms}, std::nullopt);
    enqueue(q1, 3);
    enqueue(q2, 3);
    auto claimed = engine().claim({q1, q2}, "w1", 30000ms, 4);
    ASSERT_EQ(claimed.jobs.size(), 4u);
    EXPECT_EQ(claimed.jobs[0].queue_index, 0u);
    EXPECT_EQ(claimed.jobs[3].queue_index, 1u);
    ASSERT_EQ(claimed.holds.size(), 2u);
    EXPECT_EQ(claimed.holds[0].kind, queue::HoldKind::rate);
    EXPECT_EQ(claimed.holds[1].kind, queue::HoldKind::none);
}

TEST_F(Limits, ClearingLimitsLetsEveryJobGoAndStatsShowThem) {
    auto k = keys();
    set(k, queue::RateLimit{1, 60000ms}, 1);
    auto stats = engine().stats(k);
    EXPECT_EQ(stats.limits.rate, 1);
    EXPECT_EQ(stats.limits.window, 60000ms);
    EXPECT_EQ(stats.limits.concurrency, 1);
    enqueue(k, 4);
    EXPECT_EQ(engine().claim(k, "w1", 30000ms, 10).jobs.size(), 1u);
    // Changing one leaves the other.
    auto limits = set(k, std::nullopt, 0);
    EXPECT_EQ(limits.rate, 1);
    EXPECT_EQ(limits.concurrency, 0);
    EXPECT_GE(raw().llen(k.wake()), 1);  // waiters wake to claim under the new limits
    limits = set(k, queue::RateLimit{}, std::nullopt);
    EXPECT_EQ(limits.rate, 0);
    EXPECT_FALSE(raw().hget(k.meta(), "limit_rate"));
    EXPECT_EQ(raw().call({"EXISTS", k.prefix() + "starts"}).as_integer(), 0);
    auto all = engine().claim(k, "w1", 30000ms, 10);
    EXPECT_EQ(all.jobs.size(), 3u);
    EXPECT_EQ(all.holds[0].kind, queue::HoldKind::none);
    EXPECT_EQ(engine().stats(k).limits.rate, 0);
}

}  // namespace
}  // namespace workq::test
