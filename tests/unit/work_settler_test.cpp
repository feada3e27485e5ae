// tools/work/settler.hpp without Redis: a fake connection records each call and the test answers
// it (a reply, an error reply, or a lost connection).
#include "settler.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "queue/scripts.hpp"

namespace workq::work {
namespace {

redis::Reply integer(long long value) {
    redis::Reply reply;
    reply.type = redis::Reply::Type::integer;
    reply.integer = value;
    return reply;
}

redis::Reply error(std::string text) {
    redis::Reply reply;
    reply.type = redis::Reply::Type::error;
    reply.text = std::move(text);
    return reply;
}

redis::Reply verdicts(std::size_t count) {
    redis::Reply reply;
    reply.type = redis::Reply::Type::array;
    for (std::size_t i = 0; i < count; ++i)
        reply.elements.push_back(integer(1));
    return reply;
}

struct FakeServer {
    boost::asio::io_context io;
    bool connected = true;
    struct Call {
        queue::ScriptCall call;
        Settler::Sent answer;
    };
    std::vector<Call> calls;
    int answered = 0;
    std::vector<std::string> fatal;
    std::vector<std::string> results;  // of every success a `complete` call was built for
    bool* claim_coming = nullptr;      // the worker's answer to hooks.claim_coming (unset: no)
    Settler settler{
        io, 2,
        Settler::Hooks{
            .connected = [this] { return connected; },
            .send =
                [this](const queue::ScriptCall& call, Settler::Sent sent) {
                    calls.push_back({call, sent});
                },
            .complete_call =
                [this](std::size_t queue, const std::vector<queue::Completion>& jobs) {
                    queue::ScriptCall call;
                    call.script = &queue::script("complete");
                    call.keys = {"q" + std::to_string(queue)};
                    for (const auto& job : jobs) {
                        call.args.emplace_back(job.id);
                        results.emplace_back(job.result);
                    }
                    return call;
                },
            .fatal = [this](const std::string& message) { fatal.push_back(message); },
            .answered = [this] { ++answered; },
            .label = [] { return std::string("test"); },
            .claim_coming =
                [this](std::size_t) { return claim_coming != nullptr && *claim_coming; }}};

    Settler::Outgoing release(std::string id, int* replies) {
        queue::ScriptCall call;
        call.script = &queue::script("release");
        call.args = {std::move(id)};
        return {call, [replies](const redis::Reply&) { ++*replies; }};
    }
    // Runs one more turn of the event loop (what the settler posted meanwhile).
    void turn() {
        io.restart();
        io.poll();
    }
    // Answers the oldest call not answered yet.
    void answer(std::optional<redis::Reply> reply) {
        ASSERT_FALSE(calls.empty());
        auto call = std::move(calls.front());
        calls.erase(calls.begin());
        call.answer(std::move(reply));
    }
    // Runs the loop until `done` holds (the backoff's timer), at most a few seconds.
    template <typename Done>
    bool run_until(Done done) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            io.restart();
            io.run_for(std::chrono::milliseconds(20));
        }
        return done();
    }
};

TEST(Settler, KeptWhileDisconnectedAndSentOnceConnected) {
    FakeServer server;
    server.connected = false;
    int replies = 0;
    server.settler.settle(server.release("a", &replies));
    EXPECT_TRUE(server.calls.empty());
    EXPECT_TRUE(server.settler.pending());
    server.connected = true;
    server.settler.flush();
    ASSERT_EQ(server.calls.size(), 1u);
    server.answer(integer(1));
    EXPECT_EQ(replies, 1);
    EXPECT_EQ(server.answered, 1);
    EXPECT_FALSE(server.settler.pending());
}

TEST(Settler, ALostReplyIsSentAgainAfterReconnecting) {
    FakeServer server;
    int replies = 0;
    server.settler.settle(server.release("a", &replies));
    server.connected = false;
    server.answer(std::nullopt);
    EXPECT_EQ(server.answered, 0);
    EXPECT_EQ(server.settler.outbox_size(), 1u);
    server.connected = true;
    server.settler.flush();
    ASSERT_EQ(server.calls.size(), 1u);
    EXPECT_EQ(server.calls[0].call.args[0], "a");
    server.answer(integer(1));
    EXPECT_EQ(replies, 1);
}

TEST(Settler, ARefusalForNowIsKeptAndRetriedAfterABackoff) {
    FakeServer server;
    int replies = 0;
    server.settler.settle(server.release("a", &replies));
    server.answer(error("NOREPLICAS Not enough good replicas to write."));
    EXPECT_EQ(replies, 0);
    EXPECT_EQ(server.answered, 0);
    EXPECT_TRUE(server.settler.pending());
    // Held back while the backoff runs: a new outcome waits behind it.
    server.settler.settle(server.release("b", &replies));
    EXPECT_TRUE(server.calls.empty());
    ASSERT_TRUE(server.run_until([&] { return server.calls.size() == 2; }));
    EXPECT_EQ(server.calls[0].call.args[0], "a");
    server.answer(integer(1));
    server.answer(integer(1));
    EXPECT_EQ(replies, 2);
    EXPECT_FALSE(server.settler.pending());
}

TEST(Settler, AnErrorThatWillNotPassIsDropped) {
    FakeServer server;
    int replies = 0;
    server.settler.settle(server.release("a", &replies));
    server.answer(error("ERR wrong number of arguments"));
    EXPECT_EQ(replies, 0);
    EXPECT_EQ(server.answered, 1);
    EXPECT_FALSE(server.settler.pending());
}

TEST(Settler, ANewerDataModelIsFatal) {
    FakeServer server;
    int replies = 0;
    server.settler.settle(server.release("a", &replies));
    server.answer(error("WORKQ_VERSION 9 3"));
    ASSERT_EQ(server.fatal.size(), 1u);
    EXPECT_NE(server.fatal[0].find("newer workq"), std::string::npos);
}

// A success report as queue::complete_call lays it out: prefix, result TTL, then id, token,
// result, dropped per job; its one result longer than any Redis takes in one command.
queue::ScriptCall too_long_complete() {
    queue::ScriptCall call;
    call.script = &queue::script("complete");
    call.keys = {"q0"};
    call.args = {"prefix", "0", "a", "token", std::string(2 << 20, 'x'), "0"};
    return call;
}

TEST(Settler, AReportTheConnectionDiesUnderThreeTimesIsCut) {
    FakeServer server;
    int replies = 0;
    server.settler.settle({too_long_complete(), [&replies](const redis::Reply&) { ++replies; }});
    // The first losses may be any lost connection: it goes again unchanged.
    for (int lost = 1; lost < Settler::settle_losses_before_cut; ++lost) {
        ASSERT_EQ(server.calls.size(), 1u);
        EXPECT_EQ(server.calls[0].call.args[4].size(), std::size_t(2) << 20);
        server.answer(std::nullopt);
        server.settler.flush();
    }
    ASSERT_EQ(server.calls.size(), 1u);
    EXPECT_EQ(server.calls[0].call.args[4].size(), std::size_t(2) << 20);
    server.answer(std::nullopt);  // the third: it is refused for its size
    server.settler.flush();
    ASSERT_EQ(server.calls.size(), 1u);
    const auto& args = server.calls[0].call.args;
    EXPECT_LE(args[4].size(), Settler::cut_budget);
    EXPECT_EQ(args[5], std::to_string((std::size_t(2) << 20) - args[4].size()));
    server.answer(verdicts(1));
    EXPECT_EQ(replies, 1);
    EXPECT_FALSE(server.settler.pending());
}

TEST(Settler, AProtocolErrorIsCutAtOnceNotRetriedAsIs) {
    FakeServer server;
    int replies = 0;
    server.settler.settle({too_long_complete(), [&replies](const redis::Reply&) { ++replies; }});
    server.answer(error("ERR Protocol error: invalid bulk length"));
    EXPECT_EQ(server.answered, 0);
    ASSERT_EQ(server.calls.size(), 1u);
    EXPECT_LE(server.calls[0].call.args[4].size(), Settler::cut_budget);
    server.answer(verdicts(1));
    EXPECT_EQ(replies, 1);
    EXPECT_EQ(server.answered, 1);
}

TEST(Settler, SuccessesOfAQueueGoAsOneCallWhileNoneIsOnItsWay) {
    FakeServer server;
    std::vector<std::string> settled;
    auto success = [&](std::string id) {
        return Settler::Success{id, "token", "result", 0, [&settled, id](queue::Settle verdict) {
                                    if (verdict == queue::Settle::done) settled.push_back(id);
                                }};
    };
    server.settler.succeed(0, success("a"));  // goes at once, alone
    server.settler.succeed(0, success("b"));  // wait behind it...
    server.settler.succeed(0, success("c"));
    server.settler.succeed(1, success("x"));  // another queue: its own call
    ASSERT_EQ(server.calls.size(), 2u);
    EXPECT_EQ(server.calls[0].call.args, (std::vector<std::string>{"a"}));
    EXPECT_EQ(server.calls[1].call.keys[0], "q1");
    server.answer(verdicts(1));
    // ...and go together once it is answered.
    ASSERT_EQ(server.calls.size(), 2u);
    EXPECT_EQ(server.calls[1].call.args, (std::vector<std::string>{"b", "c"}));
    server.answer(verdicts(1));
    server.answer(verdicts(2));
    EXPECT_EQ(settled, (std::vector<std::string>{"a", "x", "b", "c"}));
    EXPECT_FALSE(server.settler.pending());
}

TEST(Settler, ABatchIsBounded) {
    FakeServer server;
    auto success = [](int i) {
        return Settler::Success{std::to_string(i), "t", "", 0, [](queue::Settle) {}};
    };
    server.settler.succeed(0, success(0));
    for (int i = 1; i <= 100; ++i)
        server.settler.succeed(0, success(i));
    server.answer(verdicts(1));
    ASSERT_EQ(server.calls.size(), 1u);
    EXPECT_EQ(server.calls[0].call.args.size(), Settler::batch_most_jobs);
}

TEST(Settler, DropAllForgetsEverything) {
    FakeServer server;
    server.connected = false;
    int replies = 0;
    server.settler.settle(server.release("a", &replies));
    server.settler.drop_all();
    EXPECT_FALSE(server.settler.pending());
}

// --- one round: successes lent to a claim (README, "One round") ---------------------------------

struct Ledger {
    std::vector<std::pair<std::string, queue::Settle>> settled;
    Settler::Success success(std::string id, std::size_t result_bytes = 6) {
        return Settler::Success{
            id, "token", std::string(result_bytes, 'r'), 0,
            [this, id](queue::Settle verdict) { settled.emplace_back(id, verdict); }};
    }
};

TEST(SettlerLoan, ASuccessOfferedToAClaimRidesInItAndTakesItsStatusBack) {
    FakeServer server;
    Ledger ledger;
    server.settler.succeed(0, ledger.success("a"), true);
    server.settler.succeed(1, ledger.success("x"), true);
    EXPECT_TRUE(server.calls.empty());  // not before the end of the turn: a claim may take them
    auto loan = server.settler.lend(0, 2);
    ASSERT_EQ(loan.successes.size(), 2u);
    EXPECT_EQ(loan.queues, (std::vector<std::size_t>{0, 1}));
    EXPECT_EQ(loan.successes[0].id, "a");
    EXPECT_TRUE(server.settler.pending());
    EXPECT_EQ(server.settler.in_flight(), 1u);
    EXPECT_TRUE(server.settler.held().empty());  // on its way: not renewed
    // The end of the turn sends nothing: they are lent.
    server.io.poll();
    EXPECT_TRUE(server.calls.empty());
    // Another success meanwhile rides in the next claim, with this one still on its way.
    server.settler.succeed(0, ledger.success("b"), true);
    auto second = server.settler.lend(0, 2);
    ASSERT_EQ(second.successes.size(), 1u);
    EXPECT_EQ(server.settler.in_flight(), 2u);
    server.settler.repay(std::move(loan), {queue::Settle::done, queue::Settle::refused});
    EXPECT_EQ(ledger.settled, (std::vector<std::pair<std::string, queue::Settle>>{
                                  {"a", queue::Settle::done}, {"x", queue::Settle::refused}}));
    EXPECT_EQ(server.answered, 1);
    EXPECT_EQ(server.settler.in_flight(), 1u);
    server.settler.repay(std::move(second), {queue::Settle::done});
    EXPECT_EQ(server.settler.in_flight(), 0u);
    // No claim takes c in this turn: it goes alone, in `complete`.
    server.settler.succeed(0, ledger.success("c"), true);
    server.turn();
    ASSERT_EQ(server.calls.size(), 1u);
    EXPECT_EQ(server.calls[0].call.script->name, "complete");
    EXPECT_EQ(server.calls[0].call.args, std::vector<std::string>{"c"});
    server.answer(verdicts(1));
    EXPECT_FALSE(server.settler.pending());
}

TEST(SettlerLoan, AClaimCarriesTheReadySuccessesOfItsQueuesEvenWithACompleteOnItsWay) {
    FakeServer server;
    Ledger ledger;
    server.settler.succeed(0, ledger.success("a"));  // goes at once
    ASSERT_EQ(server.calls.size(), 1u);
    server.settler.succeed(0, ledger.success("b"), true);
    server.settler.succeed(1, ledger.success("big", Settler::lend_most_bytes + 1), true);
    // Queue 0 has a `complete` on its way: its next success rides in the claim all the same
    // (each is judged on its own). Too big: `complete` cuts it if need be.
    auto loan = server.settler.lend(0, 1);
    ASSERT_EQ(loan.successes.size(), 1u);
    EXPECT_EQ(loan.successes[0].id, "b");
    EXPECT_TRUE(server.settler.lend(1, 1).empty());
    server.io.poll();
    ASSERT_EQ(server.calls.size(), 2u);  // big went alone
    EXPECT_EQ(server.calls[1].call.args, std::vector<std::string>{"big"});
    server.settler.repay(std::move(loan), {queue::Settle::done});
    server.answer(verdicts(1));
    server.answer(verdicts(1));
    EXPECT_EQ(ledger.settled.size(), 3u);
    EXPECT_FALSE(server.settler.pending());
}

TEST(SettlerLoan, OfferedSuccessesWaitForTheClaimAfterOneOnItsWayAndGoAloneWhenNoneComes) {
    bool claim_coming = true;
    FakeServer server;
    server.claim_coming = &claim_coming;
    Ledger ledger;
    server.settler.succeed(0, ledger.success("a"), true);
    server.settler.succeed(1, ledger.success("big", Settler::lend_most_bytes + 1), true);
    server.io.poll();
    // A claim is on its way: the small one waits for the claim after it; the big one, which
    // no claim carries, goes alone.
    ASSERT_EQ(server.calls.size(), 1u);
    EXPECT_EQ(server.calls[0].call.args, std::vector<std::string>{"big"});
    EXPECT_EQ(server.settler.held().size(), 1u);  // waiting: its lease is renewed
    auto loan = server.settler.lend(0, 2);
    ASSERT_EQ(loan.successes.size(), 1u);
    server.settler.repay(std::move(loan), {queue::Settle::done});
    server.answer(verdicts(1));
    EXPECT_EQ(ledger.settled.size(), 2u);
    // No claim comes after the last one: the success goes in `complete` when it ends.
    server.settler.succeed(0, ledger.success("c"), true);
    server.turn();
    EXPECT_TRUE(server.calls.empty());
    claim_coming = false;
    server.settler.claims_ended();
    server.turn();
    ASSERT_EQ(server.calls.size(), 1u);
    EXPECT_EQ(server.calls[0].call.args, std::vector<std::string>{"c"});
    server.answer(verdicts(1));
    EXPECT_EQ(ledger.settled.size(), 3u);
    EXPECT_FALSE(server.settler.pending());
}

TEST(SettlerLoan, SuccessesThatWaitedForAClaimGoWhenTheConnectionComesBack) {
    // The claims on their way were lost with the connection: no claim will carry what waited
    // for one, and a draining worker sends none after reconnecting.
    bool claim_coming = true;
    FakeServer server;
    server.claim_coming = &claim_coming;
    Ledger ledger;
    server.settler.succeed(0, ledger.success("a"), true);
    server.io.poll();
    EXPECT_TRUE(server.calls.empty());
    claim_coming = false;
    server.connected = false;
    server.settler.claims_ended();  // the worker's on_commands_lost
    server.turn();
    EXPECT_TRUE(server.calls.empty());
    EXPECT_EQ(server.settler.outbox_size(), 1u);
    server.connected = true;
    server.settler.flush();
    ASSERT_EQ(server.calls.size(), 1u);
    EXPECT_EQ(server.calls[0].call.args, std::vector<std::string>{"a"});
    server.answer(verdicts(1));
    EXPECT_EQ(ledger.settled.size(), 1u);
    EXPECT_FALSE(server.settler.pending());
}

TEST(SettlerLoan, ALostClaimGivesItsSuccessesBackAndTheyGoInCompleteAfterReconnecting) {
    FakeServer server;
    Ledger ledger;
    server.settler.succeed(0, ledger.success("a"), true);
    server.settler.succeed(0, ledger.success("b"), true);
    server.settler.succeed(1, ledger.success("x"), true);
    auto loan = server.settler.lend(0, 2);
    ASSERT_EQ(loan.successes.size(), 3u);
    server.connected = false;
    server.settler.returned(std::move(loan));
    EXPECT_EQ(server.settler.outbox_size(), 2u);  // one `complete` per queue
    EXPECT_EQ(server.settler.held().size(), 3u);  // waiting: renewed
    EXPECT_TRUE(ledger.settled.empty());
    server.io.poll();
    EXPECT_TRUE(server.calls.empty());
    server.connected = true;
    server.settler.flush();
    ASSERT_EQ(server.calls.size(), 2u);
    EXPECT_EQ(server.calls[0].call.script->name, "complete");
    EXPECT_EQ(server.calls[0].call.args, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(server.calls[1].call.args, std::vector<std::string>{"x"});
    server.answer(verdicts(2));
    server.answer(verdicts(1));
    EXPECT_EQ(ledger.settled.size(), 3u);
    EXPECT_FALSE(server.settler.pending());
}

TEST(SettlerLoan, AClaimRefusedForNowRetriesItsSuccessesAfterABackoff) {
    FakeServer server;
    Ledger ledger;
    server.settler.succeed(0, ledger.success("a"), true);
    auto loan = server.settler.lend(0, 2);
    server.settler.refused(std::move(loan), "NOREPLICAS Not enough good replicas to write.");
    EXPECT_TRUE(ledger.settled.empty());
    EXPECT_EQ(server.settler.outbox_size(), 1u);
    // Backing off: nothing is lent meanwhile.
    server.settler.succeed(1, ledger.success("x"), true);
    EXPECT_TRUE(server.settler.lend(0, 2).empty());
    ASSERT_TRUE(server.run_until([&] { return server.calls.size() == 2; }));
    EXPECT_EQ(server.calls[0].call.script->name, "complete");
    EXPECT_EQ(server.calls[0].call.args, std::vector<std::string>{"a"});
    ASSERT_FALSE(server.results.empty());
    EXPECT_EQ(server.results.front(), "rrrrrr");  // the result, whole, as lent
    server.answer(verdicts(1));
    server.answer(verdicts(1));
    EXPECT_EQ(ledger.settled.size(), 2u);
    EXPECT_FALSE(server.settler.pending());
}

TEST(SettlerLoan, AClaimRefusedForGoodDropsItsSuccessesAndANewerDataModelIsFatalOnce) {
    FakeServer server;
    Ledger ledger;
    server.settler.succeed(0, ledger.success("a"), true);
    server.settler.refused(server.settler.lend(0, 2), "ERR wrong number of arguments");
    EXPECT_TRUE(ledger.settled.empty());
    EXPECT_EQ(server.answered, 1);
    EXPECT_FALSE(server.settler.pending());

    server.settler.succeed(0, ledger.success("b"), true);
    server.settler.succeed(1, ledger.success("y"), true);
    server.settler.refused(server.settler.lend(0, 2), "WORKQ_VERSION 9 1");
    ASSERT_EQ(server.fatal.size(), 1u);
    EXPECT_NE(server.fatal[0].find("newer workq"), std::string::npos);
    EXPECT_FALSE(server.settler.pending());
}

TEST(SettlerLoan, DropAllForgetsALoanOnItsWay) {
    FakeServer server;
    Ledger ledger;
    server.settler.succeed(0, ledger.success("a"), true);
    auto loan = server.settler.lend(0, 1);
    server.settler.drop_all();
    server.settler.repay(std::move(loan), {queue::Settle::done});
    EXPECT_TRUE(ledger.settled.empty());
    EXPECT_FALSE(server.settler.pending());
    server.io.poll();
    EXPECT_TRUE(server.calls.empty());
}

TEST(TransientRefusal, WhatTheServerRefusesForNow) {
    EXPECT_TRUE(transient_refusal("NOREPLICAS Not enough good replicas to write."));
    EXPECT_TRUE(transient_refusal("OOM command not allowed when used memory > 'maxmemory'."));
    EXPECT_TRUE(transient_refusal("READONLY You can't write against a read only replica."));
    EXPECT_TRUE(transient_refusal("LOADING Redis is loading the dataset in memory"));
    EXPECT_TRUE(transient_refusal("MISCONF Redis is configured to save RDB snapshots"));
    EXPECT_TRUE(transient_refusal("BUSY Redis is busy running a script."));
    // A cluster slot in migration, still so after the router's retries and redirects.
    EXPECT_TRUE(
        transient_refusal("TRYAGAIN workq: the slot of {ns:q} is migrating between "
                          "nodes; nothing was done script: 0123, on @user_script:69."));
    EXPECT_TRUE(transient_refusal("ASK 1126 127.0.0.1:32124"));
    EXPECT_TRUE(transient_refusal("MOVED 1126 127.0.0.1:32124"));
    // Redis 6.2 wraps what a script's redis.call met.
    EXPECT_TRUE(
        transient_refusal("ERR Error running script (call to f_0123): @user_script:12: "
                          "@user_script: 12: -NOREPLICAS Not enough good replicas"));
    EXPECT_FALSE(transient_refusal("ERR wrong number of arguments for 'evalsha' command"));
    EXPECT_FALSE(transient_refusal("WORKQ_VERSION 9 3"));
    EXPECT_FALSE(transient_refusal("ERR value is not an integer (BUSY is not a word here)"));
}

}  // namespace
}  // namespace workq::work
