// tools/work/lifecycle.hpp: every state x event of the worker's table, written out in full so
// that any change of the table fails here and is a decision someone made.
#include "lifecycle.hpp"

#include <gtest/gtest.h>

#include <map>
#include <utility>

namespace workq::work {
namespace {

using enum State;

// Rows: states; columns, in this order: connected, started, start_failed, pause, resume, drain,
// fatal, drained.
const std::map<State, std::array<State, 8>> expected_table = {
    {initializing,
     {starting, initializing, initializing, initializing, initializing, draining, error,
      initializing}},
    {starting, {starting, running, error, starting, starting, draining, error, starting}},
    {running, {running, running, running, paused, running, draining, error, running}},
    {paused, {paused, paused, paused, paused, running, draining, error, paused}},
    {draining, {draining, draining, draining, draining, draining, draining, error, stopped}},
    {stopped, {stopped, stopped, stopped, stopped, stopped, stopped, stopped, stopped}},
    {error, {error, error, error, error, error, error, error, error}},
};

TEST(WorkLifecycle, EveryStateAndEvent) {
    ASSERT_EQ(expected_table.size(), all_states.size());
    for (auto state : all_states) {
        const auto& row = expected_table.at(state);
        for (std::size_t e = 0; e < all_events.size(); ++e)
            EXPECT_EQ(to_string(next(state, all_events[e])), to_string(row[e]))
                << "in " << to_string(state) << " on " << to_string(all_events[e]);
    }
}

TEST(WorkLifecycle, EventsInTableOrder) {
    // The columns above assume this order.
    EXPECT_EQ(all_events[0], Event::connected);
    EXPECT_EQ(all_events[1], Event::started);
    EXPECT_EQ(all_events[2], Event::start_failed);
    EXPECT_EQ(all_events[3], Event::pause);
    EXPECT_EQ(all_events[4], Event::resume);
    EXPECT_EQ(all_events[5], Event::drain);
    EXPECT_EQ(all_events[6], Event::fatal);
    EXPECT_EQ(all_events[7], Event::drained);
}

TEST(WorkLifecycle, NamesAreTheContracts) {
    std::string names;
    for (auto state : all_states)
        names += std::string(to_string(state)) + " ";
    EXPECT_EQ(names, "initializing starting running paused draining stopped error ");
}

TEST(WorkLifecycle, StoppedAndErrorAreTerminal) {
    for (auto event : all_events) {
        EXPECT_EQ(next(stopped, event), stopped);
        EXPECT_EQ(next(error, event), error);
    }
}

}  // namespace
}  // namespace workq::work
