// Several workers, each a thread with its own connection, claim and settle thousands of jobs at
// once, while a reaper takes back the leases of workers that "crash" (abandon their jobs with a
// short lease). A ledger of who holds what shows that no job is ever held by two live holders,
// that no live holder is ever refused, and at the end that every job succeeded exactly once and
// none was lost, checked on the raw keys.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "queue/client.hpp"
#include "queue/transitions.hpp"
#include "redis_fixture.hpp"

namespace workq::test {
namespace {

using queue::Settle;

constexpr int job_count = 10000;
constexpr int worker_count = 4;
constexpr long long max_attempts = 50;  // retries and lapses never spend a job's attempts
constexpr Millis live_lease = 60000ms;  // never lapses during the test
constexpr Millis crash_lease = 300ms;   // a crashed worker's lease lapses quickly

// What the workers saw, shared between their threads.
struct Ledger {
    std::mutex mutex;
    std::unordered_map<std::string, std::string> holder;        // id -> token of its live holder
    std::unordered_map<std::string, std::string> completed_by;  // id -> token whose complete won
    std::vector<std::string> violations;
    std::vector<std::pair<std::string, std::string>> zombies;  // abandoned (id, token)
    long long claims = 0, fails = 0, releases = 0, abandoned = 0, zombie_settles = 0;

    void violation(std::string what) {
        std::lock_guard lock(mutex);
        if (violations.size() < 20) violations.push_back(std::move(what));
    }
};

class QueueConcurrency : public RedisTest {};

TEST_F(QueueConcurrency, ManyWorkersNeverShareAJobAndEveryJobSucceedsExactlyOnce) {
    auto k = keys();
    std::vector<std::string> ids;
    for (int i = 0; i < job_count; ++i)
        ids.push_back(fmt::format("job-{:05}", i));
    for (int start = 0; start < job_count; start += 250) {
        std::vector<std::pair<std::string, std::string>> batch;
        for (int i = start; i < std::min(job_count, start + 250); ++i)
            batch.emplace_back(ids[static_cast<std::size_t>(i)], "payload");
        auto results = engine().enqueue(k, batch, Options().max_attempts(max_attempts));
        ASSERT_EQ(results.size(), batch.size());
    }

    Ledger ledger;
    std::atomic<bool> stop{false};
    std::atomic<long long> reaped{0};

    auto worker = [&](int number) {
        try {
            auto connection = connect_test_server();
            Engine engine(connection);
            std::mt19937 rng(static_cast<unsigned>(1000 + number));
            auto roll = [&] { return std::uniform_int_distribution<int>(0, 99)(rng); };
            std::string name = "w" + std::to_string(number);
            while (!stop) {
                // Now and then, settle a job abandoned by a "crashed" worker: allowed only while
                // nobody else claimed it since.
                if (roll() < 3) {
                    std::pair<std::string, std::string> zombie;
                    {
                        std::lock_guard lock(ledger.mutex);
                        if (!ledger.zombies.empty()) {
                            zombie = ledger.zombies.back();
                            ledger.zombies.pop_back();
                        }
                    }
                    if (!zombie.first.empty()) {
                        std::lock_guard lock(ledger.mutex);  // held across: the ledger stays true
                        auto settle =
                            engine.complete(k, zombie.first, zombie.second, zombie.second);
                        if (settle == Settle::done) {
                            ++ledger.zombie_settles;
                            if (ledger.holder.count(zombie.first))
                                ledger.violations.push_back(zombie.first +
                                                            ": a stale holder settled a held job");
                            if (!ledger.completed_by.emplace(zombie.first, zombie.second).second)
                                ledger.violations.push_back(zombie.first + ": succeeded twice");
                        }
                    }
                }

                bool crash = roll() < 2;
                auto claimed = engine.claim(k, name, crash ? crash_lease : live_lease,
                                            1 + static_cast<std::size_t>(roll() % 4));
                if (claimed.jobs.empty()) {
                    // Idle: wait on the queue's wake-up list, as a worker does.
                    connection.command({"BLPOP", k.wake(), "0.05"});
                    continue;
                }
                {
                    std::lock_guard lock(ledger.mutex);
                    for (const auto& job : claimed.jobs) {
                        ++ledger.claims;
                        auto [it, fresh] = ledger.holder.emplace(job.id, job.token);
                        if (!fresh)
                            ledger.violations.push_back(
                                fmt::format("{} claimed with token {} while {} holds it", job.id,
                                            job.token, it->second));
                        if (ledger.completed_by.count(job.id))
                            ledger.violations.push_back(job.id + ": claimed after it succeeded");
                    }
                    if (crash) {
                        // The worker dies: its jobs are held by nobody until the reaper acts.
                        for (const auto& job : claimed.jobs) {
                            ledger.holder.erase(job.id);
                            ledger.zombies.emplace_back(job.id, job.token);
                            ++ledger.abandoned;
                        }
                    }
                }
                if (crash) continue;

                for (const auto& job : claimed.jobs) {
                    int outcome = roll();
                    {
                        std::lock_guard lock(ledger.mutex);
                        auto it = ledger.holder.find(job.id);
                        if (it == ledger.holder.end() || it->second != job.token)
                            ledger.violations.push_back(job.id + ": lost from the ledger");
                        else
                            ledger.holder.erase(it);
                    }
                    // A live holder (its lease far from lapsing) is never refused.
                    if (outcome < 80) {
                        auto settle = engine.complete(k, job.id, job.token, job.token);
                        if (settle != Settle::done) {
                            ledger.violation(job.id + ": a live holder's complete was refused");
                        } else {
                            std::lock_guard lock(ledger.mutex);
                            if (!ledger.completed_by.emplace(job.id, job.token).second)
                                ledger.violations.push_back(job.id + ": succeeded twice");
                        }
                        // A retried complete changes nothing.
                        if (outcome < 5 &&
                            engine.complete(k, job.id, job.token, "again") != Settle::duplicate)
                            ledger.violation(job.id + ": a retried complete was not a duplicate");
                    } else if (outcome < 92) {
                        auto failed = engine.fail(k, job.id, job.token, 0ms, "try again");
                        if (failed.settle != Settle::done ||
                            failed.state != queue::JobState::scheduled)
                            ledger.violation(job.id + ": a live holder's fail was refused");
                        std::lock_guard lock(ledger.mutex);
                        ++ledger.fails;
                    } else {
                        if (engine.release(k, job.id, job.token) != Settle::done)
                            ledger.violation(job.id + ": a live holder's release was refused");
                        std::lock_guard lock(ledger.mutex);
                        ++ledger.releases;
                    }
                }
            }
        } catch (const std::exception& error) {
            ledger.violation(std::string("worker stopped: ") + error.what());
            stop = true;
        }
    };

    auto reaper = [&] {
        try {
            auto connection = connect_test_server();
            Engine engine(connection);
            while (!stop) {
                reaped += engine.reap(k);
                std::this_thread::sleep_for(20ms);  // the reaper's own period, not a wait
            }
        } catch (const std::exception& error) {
            ledger.violation(std::string("reaper stopped: ") + error.what());
            stop = true;
        }
    };

    std::vector<std::thread> threads;
    for (int i = 0; i < worker_count; ++i)
        threads.emplace_back(worker, i);
    threads.emplace_back(reaper);

    bool finished = wait_until([&] { return stop || raw().counter(k, "succeeded") >= job_count; },
                               45000ms, 20ms);
    stop = true;
    for (auto& thread : threads)
        thread.join();

    for (const auto& violation : ledger.violations)
        ADD_FAILURE() << violation;
    ASSERT_TRUE(finished) << "only " << raw().counter(k, "succeeded") << " of " << job_count
                          << " jobs succeeded in time";

    // None lost, none twice: on the raw keys, every job succeeded, with the result of the one
    // holder whose complete won, and nothing is left anywhere else.
    EXPECT_EQ(raw().counter(k, "succeeded"), job_count);
    EXPECT_EQ(static_cast<int>(ledger.completed_by.size()), job_count);
    for (const auto& id : ids) {
        auto record = raw().hgetall(k.job(id));
        ASSERT_EQ(record["state"], "succeeded") << id;
        ASSERT_EQ(record["result"], ledger.completed_by[id]) << id;
    }
    EXPECT_EQ(raw().zcard(k.running()), 0);
    EXPECT_EQ(raw().zcard(k.scheduled()), 0);
    EXPECT_EQ(raw().zcard(k.dead()), 0);
    EXPECT_EQ(raw().zcard(k.priorities()), 0);
    // Every failed attempt is counted once: reported failures and lapsed leases.
    EXPECT_EQ(raw().counter(k, "failed"), ledger.fails + reaped.load());
    // Not vacuous: the workers raced, retried, released and crashed.
    EXPECT_GT(ledger.claims, job_count);
    EXPECT_GT(ledger.fails, 0);
    EXPECT_GT(ledger.releases, 0);
    EXPECT_GT(ledger.abandoned, 0);
    EXPECT_GT(reaped.load(), 0);
    RecordProperty("claims", std::to_string(ledger.claims));
    RecordProperty("zombie_settles", std::to_string(ledger.zombie_settles));
}

// Issue 23, item 9: two callers racing one --id into two queues made it in both (the check of
// the other queues ran outside the enqueue script). With the namespace reservation, exactly one
// job exists whatever the interleaving, and both callers name its queue.
TEST_F(QueueConcurrency, CallerIdsRacingIntoTwoQueuesMakeOneJob) {
    constexpr int rounds = 40;
    queue::NamespaceKeys ns_keys(ns());
    for (int round = 0; round < rounds; ++round) {
        std::string id = fmt::format("race-{}", round);
        std::latch start(2);
        std::string placed[2];
        std::string failure[2];
        auto caller = [&](int n) {
            try {
                auto connection = connect_test_server();
                queue::QueueKeys k(ns(), n == 0 ? "a" : "b");
                start.arrive_and_wait();
                placed[n] = queue::enqueue_with_id(connection, ns_keys, k,
                                                   Options().max_attempts(1), {id, "payload"})
                                .queue;
            } catch (const std::exception& error) {
                failure[n] = error.what();
            }
        };
        std::thread one(caller, 0), two(caller, 1);
        one.join();
        two.join();
        ASSERT_EQ(failure[0], "");
        ASSERT_EQ(failure[1], "");
        int made =
            (raw().exists(keys("a").job(id)) ? 1 : 0) + (raw().exists(keys("b").job(id)) ? 1 : 0);
        ASSERT_EQ(made, 1) << id;
        EXPECT_EQ(placed[0], placed[1]) << id;
        EXPECT_TRUE(raw().exists(keys(placed[0]).job(id))) << id;
    }
}

}  // namespace
}  // namespace workq::test
