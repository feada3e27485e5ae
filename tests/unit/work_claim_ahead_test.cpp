// The claim-ahead bookkeeping of workq-work --claim-ahead (tools/work/claim_ahead.hpp): how much
// a claim asks for, which held job starts next, what is given back.
#include "claim_ahead.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace workq::work {
namespace {

queue::ClaimedJob job(std::size_t queue_index, std::string id) {
    queue::ClaimedJob claimed;
    claimed.queue_index = queue_index;
    claimed.id = id;
    claimed.token = "t-" + id;
    claimed.ahead = true;
    return claimed;
}

std::vector<std::string> ids(const std::vector<queue::ClaimedJob>& jobs) {
    std::vector<std::string> out;
    for (const auto& claimed : jobs)
        out.push_back(claimed.id);
    return out;
}

TEST(ClaimAhead, OffAsksForTheFreeSlotsOnly) {
    ClaimAhead off;
    EXPECT_EQ(off.ask(3), (ClaimAhead::Ask{3, 0}));
    EXPECT_EQ(off.ask(0), (ClaimAhead::Ask{0, 0}));
}

TEST(ClaimAhead, AsksForTheFreeSlotsAndThePlacesAheadStillOpen) {
    ClaimAhead ahead(2);
    EXPECT_EQ(ahead.ask(1), (ClaimAhead::Ask{3, 2}));
    EXPECT_EQ(ahead.ask(0), (ClaimAhead::Ask{2, 2}));  // every slot busy: ahead only
    ahead.sent({2, 2});
    EXPECT_EQ(ahead.ask(0), (ClaimAhead::Ask{0, 0}));  // a claim on its way may fill them
    ahead.answered({2, 2});
    ahead.hold(job(0, "a"));
    EXPECT_EQ(ahead.ask(0), (ClaimAhead::Ask{1, 1}));
    ahead.hold(job(0, "b"));
    EXPECT_EQ(ahead.ask(1), (ClaimAhead::Ask{1, 0}));  // full: the free slot only
    ahead.sent({1, 1});
    ahead.claims_lost();  // the connection failed: nothing is on its way any more
    EXPECT_EQ(ahead.asked_ahead(), 0u);
}

TEST(ClaimAhead, ABudgetCutsThePlacesAheadFirst) {
    ClaimAhead ahead(2);
    EXPECT_EQ(ahead.ask(2, 3), (ClaimAhead::Ask{3, 1}));
    EXPECT_EQ(ahead.ask(2, 2), (ClaimAhead::Ask{2, 0}));
    EXPECT_EQ(ahead.ask(2, 1), (ClaimAhead::Ask{1, 0}));
    EXPECT_EQ(ahead.ask(0, 0), (ClaimAhead::Ask{0, 0}));
    EXPECT_EQ(ahead.ask(0, 5), (ClaimAhead::Ask{2, 2}));
}

TEST(ClaimAhead, TheFirstQueueInPriorityOrderStartsFirstThenTheOldest) {
    ClaimAhead ahead(4);
    ahead.hold(job(1, "low-1"));
    ahead.hold(job(0, "high-1"));
    ahead.hold(job(1, "low-2"));
    ahead.hold(job(0, "high-2"));
    std::vector<std::string> order;
    while (auto next = ahead.next())
        order.push_back(next->id);
    EXPECT_EQ(order, (std::vector<std::string>{"high-1", "high-2", "low-1", "low-2"}));
    EXPECT_EQ(ahead.held(), 0u);
    EXPECT_FALSE(ahead.next());
}

TEST(ClaimAhead, TakeFindsAJobByIdAndToken) {
    ClaimAhead ahead(2);
    ahead.hold(job(0, "a"));
    ahead.hold(job(0, "b"));
    EXPECT_FALSE(ahead.take("a", "another token"));
    auto taken = ahead.take("a", "t-a");
    ASSERT_TRUE(taken);
    EXPECT_EQ(taken->id, "a");
    EXPECT_EQ(ahead.held(), 1u);
    EXPECT_FALSE(ahead.take("a", "t-a"));
}

TEST(ClaimAhead, ADrainGivesBackEveryHeldJob) {
    ClaimAhead ahead(3);
    ahead.hold(job(0, "a"));
    ahead.hold(job(1, "b"));
    EXPECT_EQ(ids(ahead.give_back_all()), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(ahead.held(), 0u);
    EXPECT_TRUE(ahead.give_back_all().empty());
}

TEST(ClaimAhead, ALowerLimitGivesBackTheNewestPastIt) {
    ClaimAhead ahead(3);
    ahead.hold(job(0, "a"));
    ahead.hold(job(0, "b"));
    ahead.hold(job(0, "c"));
    EXPECT_EQ(ids(ahead.set_limit(1)), (std::vector<std::string>{"c", "b"}));
    EXPECT_EQ(ahead.held(), 1u);
    EXPECT_EQ(ahead.limit(), 1u);
    EXPECT_TRUE(ahead.set_limit(4).empty());
    EXPECT_EQ(ahead.ask(0), (ClaimAhead::Ask{3, 3}));
}

}  // namespace
}  // namespace workq::work
