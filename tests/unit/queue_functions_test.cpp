// The scripts as one function library (Redis >= 7: FUNCTION LOAD, FCALL), and the ways back to
// EVALSHA (redis/script.hpp), on the test server. Skipped on a server without functions.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "queue/client.hpp"
#include "queue/scripts.hpp"
#include "queue/transitions.hpp"
#include "redis/script.hpp"
#include "redis/server_info.hpp"
#include "redis_fixture.hpp"

namespace workq::test {
namespace {

class Functions : public RedisTest {
  protected:
    void SetUp() override {
        RedisTest::SetUp();
        auto reply = raw_connection().command({"FUNCTION", "LIST", "LIBRARYNAME", "workq_"});
        if (reply.is_error()) GTEST_SKIP() << "no functions on this server: " << reply.text;
    }

    redis::Connection& raw_connection() {
        if (!admin_) admin_.emplace(connect_test_server());
        return *admin_;
    }

    // calls=<n> of INFO commandstats' cmdstat_<name> (0 when absent).
    long long calls(std::string_view name) {
        for (const auto& [field, value] : redis::info_fields(raw_connection(), "commandstats"))
            if (field == "cmdstat_" + std::string(name)) {
                auto at = value.find("calls=");
                return std::stoll(value.substr(at + 6));
            }
        return 0;
    }

    bool library_loaded() {
        auto reply = raw_connection().command(
            {"FUNCTION", "LIST", "LIBRARYNAME", queue::embedded_library_name()});
        return reply.is_array() && !reply.elements.empty();
    }

    // enqueue, claim, complete of one job through `engine`.
    void round_trip(Engine& engine, const queue::QueueKeys& k, const std::string& id) {
        ASSERT_EQ(engine.enqueue_one(k, id), queue::EnqueueStatus::created);
        auto claimed = engine.claim(k);
        ASSERT_EQ(claimed.jobs.size(), 1u);
        ASSERT_EQ(claimed.jobs[0].id, id);
        ASSERT_EQ(engine.complete(k, id, claimed.jobs[0].token), queue::Settle::done);
        EXPECT_EQ(raw().hget(k.job(id), "state"), "succeeded");
    }

    // The endpoint of a new ACL user `user` who may run everything but `denied` ("-info"...).
    redis::Endpoint user_without(const std::string& user, const std::string& denied) {
        raw_connection().call(
            {"ACL", "SETUSER", user, "reset", "on", ">pw", "~*", "&*", "+@all", denied});
        auto endpoint = test_endpoint();
        endpoint.username = user;
        endpoint.password = "pw";
        return endpoint;
    }

    // A connection that asks INFO cluster with its login, as the worker's and a TCP tool's do.
    static redis::Connection open_asking(const redis::Endpoint& endpoint) {
        std::optional<redis::Reply> info;
        return redis::Connection::open_server(endpoint, {}, &info);
    }

  private:
    std::optional<redis::Connection> admin_;
};

TEST_F(Functions, ScriptsRunAsFcallNotEvalsha) {
    auto k = keys();
    round_trip(engine(), k, "warm");  // loads the library if the server lacked it
    auto fcalls = calls("fcall");
    auto evalshas = calls("evalsha");
    auto evals = calls("eval");
    round_trip(engine(), k, "j1");
    EXPECT_GE(calls("fcall") - fcalls, 3);
    EXPECT_EQ(calls("evalsha"), evalshas);
    EXPECT_EQ(calls("eval"), evals);
    EXPECT_TRUE(library_loaded());
}

TEST_F(Functions, TheLibraryIsLoadedAgainAfterFunctionFlushBetweenCalls) {
    auto k = keys();
    round_trip(engine(), k, "warm");
    raw_connection().call({"FUNCTION", "FLUSH"});
    auto fcalls = calls("fcall");
    round_trip(engine(), k, "after");
    EXPECT_TRUE(library_loaded());
    EXPECT_GE(calls("fcall") - fcalls, 4);  // the one that met "not found", and the 3
}

// Mirror of PipelinedScriptsRunAgainAfterTheServerLostItsScriptCache: the library flushed
// before a pipelined batch, then flushed again and again by another client while batches run:
// every call runs once, in order.
TEST_F(Functions, PipelinedCallsRunAgainInOrderAfterFunctionFlush) {
    auto k = keys();
    ASSERT_EQ(engine().enqueue_one(k, "warm"), queue::EnqueueStatus::created);
    raw_connection().call({"FUNCTION", "FLUSH"});
    std::vector<std::string> expected{"warm"};
    auto batch = [&](const std::string& prefix, int n) {
        std::vector<queue::ScriptCall> calls;
        for (int i = 0; i < n; ++i) {
            auto id = prefix + std::to_string(i);
            std::vector<queue::NewJob> jobs{{id, "x"}};
            calls.push_back(queue::enqueue_call(k, Options(), jobs));
            queue::append(connection(), calls.back());
            expected.push_back(id);
        }
        auto replies = connection().read_script_replies();
        ASSERT_EQ(replies.size(), static_cast<std::size_t>(n));
        for (const auto& reply : replies)
            EXPECT_FALSE(reply.is_error()) << reply.text;
    };
    batch("p", 3);
    EXPECT_EQ(raw().lrange(k.waiting(0)), expected);
    EXPECT_TRUE(library_loaded());

    // In the middle of a batch: another client flushes in a loop while batches go.
    std::atomic<bool> done{false};
    std::thread flusher([&] {
        auto other = connect_test_server();
        while (!done)
            other.command({"FUNCTION", "FLUSH"});
    });
    for (int round = 0; round < 20; ++round)
        batch("r" + std::to_string(round) + "-", 200);
    done = true;
    flusher.join();
    EXPECT_EQ(raw().lrange(k.waiting(0)), expected);
}

// The slot guard's EXISTS (slot_guard, helpers.lua) runs inside every call on a connection that
// does not know its server's cluster mode, and inside none on one that learnt cluster_enabled:0
// on the way in: same calls, 3 EXISTS apart in INFO commandstats. EVALSHA keeps the guard.
TEST_F(Functions, APlainServerRunsTheScriptsWithoutTheSlotGuard) {
    auto k = keys();
    // A connection that asked INFO cluster with its login (a tool over TCP or to a Sentinel's
    // master, the worker's) knows; a tool's over a Unix socket does not ask (it sends no command
    // before its input is known good), nor does one opened without asking here.
    auto asked = open_asking(test_endpoint());
    ASSERT_TRUE(asked.plain_server());
    Engine plain_engine(asked);
    round_trip(plain_engine, k, "warm");
    auto exists = calls("exists");
    round_trip(plain_engine, k, "plain");
    auto plain = calls("exists") - exists;

    auto unknown = redis::Connection::open_server(test_endpoint());  // no INFO cluster
    ASSERT_FALSE(unknown.plain_server());
    Engine guarded_engine(unknown);
    exists = calls("exists");
    round_trip(guarded_engine, k, "guarded");
    auto guarded = calls("exists") - exists;
    EXPECT_EQ(guarded - plain, 3);

    auto evalsha = open_asking(test_endpoint());
    ASSERT_TRUE(evalsha.plain_server());
    evalsha.use_functions(false);
    Engine evalsha_engine(evalsha);
    round_trip(evalsha_engine, k, "evalsha-warm");
    exists = calls("exists");
    round_trip(evalsha_engine, k, "evalsha");
    EXPECT_EQ(calls("exists") - exists, guarded);
}

// A user who may not run INFO: the server's cluster mode is not known, and the guard stays.
TEST_F(Functions, AUserWithoutInfoKeepsTheSlotGuard) {
    auto user = "w-" + ns();
    auto endpoint = user_without(user, "-info");
    auto limited = open_asking(endpoint);
    EXPECT_FALSE(limited.plain_server());
    Engine engine(limited);
    auto k = keys();
    round_trip(engine, k, "warm");
    auto exists = calls("exists");
    round_trip(engine, k, "a");
    auto guarded = calls("exists") - exists;
    auto asked = open_asking(test_endpoint());
    ASSERT_TRUE(asked.plain_server());
    Engine plain_engine(asked);
    exists = calls("exists");
    round_trip(plain_engine, k, "b");
    EXPECT_EQ(guarded - (calls("exists") - exists), 3);
    raw_connection().call({"ACL", "DELUSER", user});
}

// A user who may not run FUNCTION (ACL) still gets every script run, through EVALSHA.
TEST_F(Functions, AUserWithoutFunctionRightsRunsTheScriptsThroughEvalsha) {
    auto user = "u-" + ns();
    auto endpoint = user_without(user, "-function");
    raw_connection().call({"FUNCTION", "FLUSH"});
    auto limited = redis::Connection::open(endpoint);
    Engine engine(limited);
    auto evalshas = calls("evalsha");
    auto k = keys();
    round_trip(engine, k, "a");
    round_trip(engine, k, "b");
    EXPECT_FALSE(library_loaded());
    EXPECT_GE(calls("evalsha") - evalshas, 3);  // the first of each script went as EVAL
    raw_connection().call({"ACL", "DELUSER", user});
}

// A user who may not run FCALL (as a server without functions, Redis 6.2, answers "unknown
// command"): the calls that met the refusal run again as EVAL, later ones as EVALSHA.
TEST_F(Functions, AUserWithoutFcallRunsTheScriptsThroughEvalsha) {
    auto user = "v-" + ns();
    auto endpoint = user_without(user, "-fcall");
    auto limited = redis::Connection::open(endpoint);
    Engine engine(limited);
    auto k = keys();
    round_trip(engine, k, "a");
    auto evalshas = calls("evalsha");
    round_trip(engine, k, "b");
    EXPECT_EQ(calls("evalsha") - evalshas, 3);
    raw_connection().call({"ACL", "DELUSER", user});
}

// At maxmemory, as before functions: an enqueue is refused at its first write (the same
// words), a settle whose first write frees memory goes through.
TEST_F(Functions, AtMaxmemoryScriptsBehaveAsTheirEvalDid) {
    auto k = keys();
    round_trip(engine(), k, "warm");
    ASSERT_EQ(engine().enqueue_one(k, "held"), queue::EnqueueStatus::created);
    auto claimed = engine().claim(k);
    ASSERT_EQ(claimed.jobs.size(), 1u);
    raw_connection().call({"CONFIG", "SET", "maxmemory", "1"});
    struct Restore {
        redis::Connection& admin;
        ~Restore() { admin.command({"CONFIG", "SET", "maxmemory", "0"}); }
    } restore{raw_connection()};
    auto evals = calls("eval");
    std::vector<queue::NewJob> jobs{{"more", "x"}};
    queue::append(connection(), queue::enqueue_call(k, Options(), jobs));
    auto refused = connection().read_script_replies().at(0);
    ASSERT_TRUE(refused.is_error());
    EXPECT_TRUE(refused.text.starts_with("OOM command not allowed")) << refused.text;
    EXPECT_EQ(engine().complete(k, "held", claimed.jobs[0].token), queue::Settle::done);
    EXPECT_EQ(raw().hget(k.job("held"), "state"), "succeeded");
    // Refused as functions before they started (no allow-oom), both ran as EVAL texts.
    EXPECT_EQ(calls("eval") - evals, 2);
}

// The library's text: two functions per script (guarded, and plain for a server without
// cluster mode), named after the library (two workq versions on one server do not collide),
// the helpers once.
TEST(FunctionLibrary, HoldsEveryScriptUnderItsHashedName) {
    auto library = queue::embedded_library();
    auto name = std::string(queue::embedded_library_name());
    EXPECT_TRUE(library.starts_with("#!lua name=" + name + "\n"));
    for (const auto& script : queue::embedded_scripts()) {
        EXPECT_EQ(script.function, name + "_" + std::string(script.name));
        EXPECT_EQ(script.plain_function, std::string(script.function) + "_n");
        EXPECT_NE(library.find("function_name='" + std::string(script.function) + "'"),
                  std::string_view::npos);
        EXPECT_NE(library.find("function_name='" + std::string(script.plain_function) + "'"),
                  std::string_view::npos);
        EXPECT_EQ(script.library, library);
        EXPECT_TRUE(script.text.find("slot_guard(KEYS); ") != std::string_view::npos);
    }
    EXPECT_EQ(library.find("local function slot_guard"),
              library.rfind("local function slot_guard"));
}

TEST(FunctionLibrary, WhatDidNotRunIsToldApart) {
    auto error = [](std::string text) {
        redis::Reply reply;
        reply.type = redis::Reply::Type::error;
        reply.text = std::move(text);
        return reply;
    };
    using redis::ScriptMiss;
    EXPECT_EQ(redis::script_miss("FCALL", error("ERR Function not found")), ScriptMiss::library);
    EXPECT_EQ(redis::script_miss("FCALL", error("ERR unknown command 'FCALL', with args")),
              ScriptMiss::no_functions);
    EXPECT_EQ(redis::script_miss(
                  "FCALL", error("NOPERM this user has no permissions to run the 'fcall' command")),
              ScriptMiss::no_functions);
    EXPECT_EQ(redis::script_miss("FCALL", error("OOM allow-oom flag is not set on the script, "
                                                "can not run it when used memory > 'maxmemory'")),
              ScriptMiss::refused_before_start);
    EXPECT_EQ(redis::script_miss("FCALL", error("NOREPLICAS Not enough good replicas to write.")),
              ScriptMiss::refused_before_start);
    EXPECT_EQ(redis::script_miss("EVALSHA", error("NOSCRIPT No matching script")),
              ScriptMiss::script_cache);
    // A script's own refusals ran: not sent again.
    EXPECT_EQ(redis::script_miss("FCALL", error("WORKQ_DAMAGED x")), ScriptMiss::none);
    EXPECT_EQ(redis::script_miss("EVALSHA", error("OOM command not allowed")), ScriptMiss::none);
    EXPECT_EQ(redis::script_miss("EVAL", error("NOSCRIPT")), ScriptMiss::none);
    EXPECT_TRUE(redis::library_loaded(error("ERR Library 'workq_x' already exists")));
    EXPECT_FALSE(redis::library_loaded(error("NOPERM this user has no permissions")));
}

}  // namespace
}  // namespace workq::test
