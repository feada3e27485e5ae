// How a worker serving several queues groups its claims and waits on a cluster
// (tools/work/claim_plan.hpp), and how a chain of claims adds up.
#include "claim_plan.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

namespace workq::work {
namespace {

using Groups = QueueGroups;
using Millis = std::chrono::milliseconds;

TEST(ClaimPlan, OneCallOverEveryQueueOffACluster) {
    std::vector<int> slots{1, 2, 3};
    EXPECT_EQ(claim_links(slots, false), (Groups{{0, 1, 2}}));
    EXPECT_EQ(wait_groups(slots, false), (Groups{{0, 1, 2}}));
}

TEST(ClaimPlan, OneCallWhenEveryQueueSharesASlot) {
    std::vector<int> slots{7, 7, 7};
    EXPECT_EQ(claim_links(slots, true), (Groups{{0, 1, 2}}));
    EXPECT_EQ(wait_groups(slots, true), (Groups{{0, 1, 2}}));
    std::vector<int> one{42};
    EXPECT_EQ(claim_links(one, true), (Groups{{0}}));
    EXPECT_EQ(wait_groups(one, true), (Groups{{0}}));
    EXPECT_TRUE(claim_links({}, true).empty());
}

TEST(ClaimPlan, LinksAreRunsOfConsecutiveQueuesInOneSlotInTheOrderGiven) {
    // Priority order is kept: queue 2 shares queue 0's slot but comes after queue 1.
    std::vector<int> slots{5, 9, 5, 5, 11};
    EXPECT_EQ(claim_links(slots, true), (Groups{{0}, {1}, {2, 3}, {4}}));
}

TEST(ClaimPlan, WaitsAreOnePerSlotInTheOrderFirstMet) {
    std::vector<int> slots{5, 9, 5, 5, 11};
    EXPECT_EQ(wait_groups(slots, true), (Groups{{0, 2, 3}, {1}, {4}}));
}

queue::ClaimedJob job(std::size_t index, std::string id) {
    queue::ClaimedJob claimed;
    claimed.queue_index = index;
    claimed.id = std::move(id);
    return claimed;
}

TEST(ClaimPlan, MergeMapsEachLinksQueuesToTheServedOnes) {
    queue::ClaimResult total;
    std::vector<std::size_t> first{0}, second{1, 2};
    queue::ClaimResult a;
    a.next_due = Millis(500);
    a.holds = {{queue::HoldKind::rate, Millis(30)}};
    a.jobs = {job(0, "a1"), job(0, "a2")};
    merge_claim(total, std::move(a), first, 4);
    queue::ClaimResult b;
    b.next_due = Millis(200);
    b.next_tick = Millis(1000);
    b.holds = {{}, {queue::HoldKind::concurrency, Millis(0)}};
    b.damaged = {{0, "wrong type"}};
    b.jobs = {job(1, "c1"), job(0, "b1")};
    merge_claim(total, std::move(b), second, 4);

    ASSERT_EQ(total.jobs.size(), 4u);
    EXPECT_EQ(total.jobs[0].id, "a1");
    EXPECT_EQ(total.jobs[0].queue_index, 0u);
    EXPECT_EQ(total.jobs[2].id, "c1");
    EXPECT_EQ(total.jobs[2].queue_index, 2u);
    EXPECT_EQ(total.jobs[3].queue_index, 1u);
    ASSERT_EQ(total.holds.size(), 4u);
    EXPECT_EQ(total.holds[0].kind, queue::HoldKind::rate);
    EXPECT_EQ(total.holds[0].wait, Millis(30));
    EXPECT_EQ(total.holds[1].kind, queue::HoldKind::none);
    EXPECT_EQ(total.holds[2].kind, queue::HoldKind::concurrency);
    EXPECT_EQ(total.holds[3].kind, queue::HoldKind::none);  // not reached by the chain
    ASSERT_EQ(total.damaged.size(), 1u);
    EXPECT_EQ(total.damaged[0].queue_index, 1u);
    // The earliest hints of the chain; one link's missing hint is the other's.
    EXPECT_EQ(total.next_due, Millis(200));
    EXPECT_EQ(total.next_tick, Millis(1000));
}

TEST(ClaimPlan, MergeOfNoHintsKeepsNone) {
    queue::ClaimResult total;
    std::vector<std::size_t> link{0};
    merge_claim(total, queue::ClaimResult{}, link, 1);
    EXPECT_FALSE(total.next_due);
    EXPECT_FALSE(total.next_tick);
    EXPECT_EQ(total.holds.size(), 1u);
    EXPECT_TRUE(total.jobs.empty());
}

// A refused link (a cluster: its slot moving...) is left out of the chains, the links after it
// are asked; when its pause is over it is due for a retry of its own.
TEST(ClaimPlan, ARefusedLinkIsSkippedUntilItsRetryIsDue) {
    using Clock = LinkSkips::Clock;
    auto now = Clock::now();
    LinkSkips skips(3, Millis(1000), Millis(8000));
    EXPECT_FALSE(skips.any_skipped());
    EXPECT_EQ(skips.next(0), 0u);
    EXPECT_FALSE(skips.due(now));
    EXPECT_FALSE(skips.next_retry());
    EXPECT_EQ(skips.refused(0, now), Millis(1000));
    EXPECT_TRUE(skips.skipped(0));
    EXPECT_TRUE(skips.any_skipped());
    EXPECT_FALSE(skips.skipped(1));
    EXPECT_EQ(skips.next(0), 1u);
    EXPECT_EQ(skips.next(2), 2u);
    EXPECT_EQ(skips.next(3), 3u);
    EXPECT_FALSE(skips.due(now + Millis(999)));
    EXPECT_EQ(skips.next_retry(), now + Millis(1000));
    EXPECT_EQ(skips.due(now + Millis(1000)), 0u);
    // Its retry on its way: not due again, still left out of the chains, no timer for it.
    skips.retrying(0);
    EXPECT_FALSE(skips.due(now + Millis(5000)));
    EXPECT_TRUE(skips.skipped(0));
    EXPECT_FALSE(skips.next_retry());
    // Answered: back in the chains.
    EXPECT_TRUE(skips.answered(0));
    EXPECT_FALSE(skips.skipped(0));
    EXPECT_EQ(skips.next(0), 0u);
    EXPECT_FALSE(skips.answered(0));
}

TEST(ClaimPlan, ARefusedLinksPauseDoublesUpToTheCapAndAnAnswerResetsIt) {
    auto now = LinkSkips::Clock::now();
    LinkSkips skips(2, Millis(1000), Millis(8000));
    std::vector<Millis> pauses;
    for (int i = 0; i < 6; ++i) {
        EXPECT_FALSE(skips.due(now));
        pauses.push_back(skips.refused(1, now));
    }
    EXPECT_EQ(pauses, (std::vector<Millis>{Millis(1000), Millis(2000), Millis(4000), Millis(8000),
                                           Millis(8000), Millis(8000)}));
    skips.answered(1);
    EXPECT_EQ(skips.refused(1, now), Millis(1000));
}

TEST(ClaimPlan, EveryLinkRefusedLeavesNoneToAskAndTheFirstRetryTimes) {
    auto now = LinkSkips::Clock::now();
    LinkSkips skips(2, Millis(1000), Millis(8000));
    skips.refused(0, now);
    skips.refused(0, now);  // 2 s
    skips.refused(1, now);  // 1 s
    EXPECT_EQ(skips.next(0), 2u);
    EXPECT_EQ(skips.next_retry(), now + Millis(1000));
    EXPECT_EQ(skips.due(now + Millis(1500)), 1u);
    EXPECT_EQ(skips.due(now + Millis(2000)), 0u);  // the first in priority order
    // A retry lost with the connection: due again.
    skips.retrying(0);
    EXPECT_EQ(skips.due(now + Millis(2000)), 1u);
    skips.abandoned(0);
    EXPECT_EQ(skips.due(now + Millis(2000)), 0u);
}

}  // namespace
}  // namespace workq::work
