// How a worker serving several queues groups its claims and waits on a cluster
// (tools/work/claim_plan.hpp), and how a chain of claims adds up.
#include "claim_plan.hpp"

#include <gtest/gtest.h>

#include <chrono>
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

}  // namespace
}  // namespace workq::work
