// A real redis-server for the engine's tests, and two ways to talk to it:
//   - Engine: the library's transitions (what is under test), over one connection;
//   - Raw: plain Redis commands (HGET, ZSCORE, LRANGE...) to check what the transitions did,
//     never through the library's own look-up or stats code.
// The server is the one named by WORKQ_TEST_REDIS_URL (scripts/test starts a private one on a
// Unix socket), or else one this binary starts on first use in a temporary directory
// (redis-server --port 0 --unixsocket <dir>/r.sock --save '') and stops by pid at the end.
// Every test gets a namespace of its own, so tests never see each other's keys.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "queue/keys.hpp"
#include "queue/transitions.hpp"
#include "redis/connection.hpp"

namespace workq::test {

using namespace std::chrono_literals;
using queue::Millis;

// The test server's address; starts the private server on first use. Throws when neither the
// environment names a server nor redis-server can be started.
const redis::Endpoint& test_endpoint();

// A new connection to the test server.
redis::Connection connect_test_server();

// Polls `condition` every `interval` until it holds or `timeout` passes; returns whether it held.
// The only way tests wait: a bounded poll on what they wait for, never a bare sleep.
bool wait_until(const std::function<bool()>& condition, Millis timeout = 5000ms,
                Millis interval = 2ms);

// A namespace name no other test (in this process or another one) uses.
std::string unique_namespace(std::string_view hint);

// EnqueueOptions, one field at a time: Options().priority(5).delay(1000ms).
class Options {
  public:
    Options& priority(long long v) { return set(&queue::EnqueueOptions::priority, v); }
    Options& max_attempts(long long v) { return set(&queue::EnqueueOptions::max_attempts, v); }
    Options& timeout(Millis v) {
        o_.timeout = v;
        return *this;
    }
    Options& delay(Millis v) { return set(&queue::EnqueueOptions::delay, v); }
    Options& due_at_ms(long long v) {
        o_.due_at_ms = v;
        return *this;
    }
    Options& unique_key(std::string v) { return set(&queue::EnqueueOptions::unique_key, v); }
    Options& caller_ids(bool v) { return set(&queue::EnqueueOptions::caller_ids, v); }
    operator queue::EnqueueOptions() const { return o_; }  // NOLINT: meant to convert

  private:
    template <typename T, typename V>
    Options& set(T queue::EnqueueOptions::*field, V value) {
        o_.*field = std::move(value);
        return *this;
    }
    queue::EnqueueOptions o_;
};

// Plain Redis commands, for checking the data model from outside the library.
class Raw {
  public:
    explicit Raw(redis::Connection& connection) : c_(&connection) {}

    long long server_now_ms();  // TIME, in milliseconds
    std::optional<std::string> get(const std::string& key);
    std::optional<std::string> hget(const std::string& key, std::string_view field);
    std::map<std::string, std::string> hgetall(const std::string& key);
    std::optional<long long> zscore(const std::string& key, std::string_view member);
    std::vector<std::string> lrange(const std::string& key);
    std::vector<std::string> zrange(const std::string& key);
    std::vector<std::pair<std::string, long long>> zrange_scores(const std::string& key);
    long long llen(const std::string& key);
    long long zcard(const std::string& key);
    bool exists(const std::string& key);
    long long pttl(const std::string& key);
    std::string type(const std::string& key);
    // Any command whose reply is not an error (for setting up corruption and the like).
    redis::Reply call(std::initializer_list<std::string_view> args);

    // Every id waiting in the queue, highest priority first, each list head first (the order
    // in which claims take them), read from <p>priorities and <p>waiting:<prio>.
    std::vector<std::string> waiting_in_claim_order(const queue::QueueKeys& keys);
    // The meta counter `field` (succeeded, failed, trimmed), 0 when absent.
    long long counter(const queue::QueueKeys& keys, std::string_view field);

  private:
    redis::Connection* c_;
};

// The transitions under test, called the way the tools call them (queue/client.hpp), with
// defaults that keep the tests short.
class Engine {
  public:
    explicit Engine(redis::Connection& connection) : c_(&connection) {}

    static constexpr Millis long_ttl = 3600000ms;  // result TTL that outlives every test

    redis::Reply run(const queue::ScriptCall& call);

    std::vector<queue::EnqueueResult> enqueue(
        const queue::QueueKeys& keys, const std::vector<std::pair<std::string, std::string>>& jobs,
        const queue::EnqueueOptions& options = {});
    // One job, id and payload given: returns its status.
    queue::EnqueueStatus enqueue_one(const queue::QueueKeys& keys, const std::string& id,
                                     const queue::EnqueueOptions& options = {},
                                     const std::string& payload = "payload");

    queue::ClaimResult claim(const std::vector<queue::QueueKeys>& queues,
                             std::string_view worker = "w1", Millis lease = 30000ms,
                             std::size_t max_jobs = 1);
    queue::ClaimResult claim(const queue::QueueKeys& keys, std::string_view worker = "w1",
                             Millis lease = 30000ms, std::size_t max_jobs = 1) {
        return claim(std::vector<queue::QueueKeys>{keys}, worker, lease, max_jobs);
    }

    // Up to `max_jobs`, of which those past max_jobs - ahead are claimed ahead (--claim-ahead).
    queue::ClaimResult claim_ahead(const queue::QueueKeys& keys, std::size_t max_jobs,
                                   std::size_t ahead, std::string_view worker = "w1",
                                   Millis lease = 30000ms);
    // The start notice of a job claimed ahead: 1 counted, 0 left as it was.
    long long start(const queue::QueueKeys& keys, std::string_view id, std::string_view token);

    queue::Settle complete(const queue::QueueKeys& keys, std::string_view id,
                           std::string_view token, std::string_view result = "ok",
                           Millis ttl = long_ttl);
    // retry_delay nullopt: permanent.
    queue::FailOutcome fail(const queue::QueueKeys& keys, std::string_view id,
                            std::string_view token, std::optional<Millis> retry_delay,
                            std::string_view error = "it broke", Millis ttl = long_ttl);
    queue::Settle release(const queue::QueueKeys& keys, std::string_view id, std::string_view token,
                          Millis ttl = long_ttl);
    queue::RenewStatus renew(const queue::QueueKeys& keys, std::string_view id,
                             std::string_view token, Millis lease = 30000ms);
    // One reap call: the jobs it took back (parse_reap's `more` is for the worker's loop).
    long long reap(const queue::QueueKeys& keys, std::size_t limit = 1000, Millis ttl = long_ttl);
    queue::ReapStep reap_step(const queue::QueueKeys& keys, std::size_t limit,
                              Millis ttl = long_ttl);
    std::vector<queue::CancelResult> cancel(const queue::QueueKeys& keys,
                                            const std::vector<std::string>& ids,
                                            Millis ttl = long_ttl);
    queue::PurgeStep purge(const queue::QueueKeys& keys, queue::PurgeWhich which, std::size_t batch,
                           Millis ttl = long_ttl);
    long long set_paused(const queue::QueueKeys& keys, bool paused);
    std::vector<queue::RequeueOutcome> requeue(const queue::QueueKeys& keys,
                                               const std::vector<std::string>& ids,
                                               std::size_t oldest = 0, std::size_t skip = 0);
    std::vector<queue::IdOutcome> delete_dead(const queue::QueueKeys& keys,
                                              const std::vector<std::string>& ids,
                                              std::size_t oldest = 0);
    long long dead_cap(const queue::QueueKeys& keys, long long max_count, Millis max_age);
    queue::QueueStats stats(const queue::QueueKeys& keys);
    std::optional<queue::JobInfo> job_info(const queue::QueueKeys& keys, std::string_view id,
                                           bool details = true);

  private:
    redis::Connection* c_;
};

// Base of every test that needs the server: a namespace of its own, a connection, and both
// views of the data. The namespace's keys are deleted at the end.
class RedisTest : public ::testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;

    const std::string& ns() const { return ns_; }
    queue::QueueKeys keys(std::string_view queue = "q") const { return {ns_, queue}; }
    redis::Connection& connection() { return *connection_; }
    Raw& raw() { return *raw_; }
    Engine& engine() { return *engine_; }

  private:
    std::string ns_;
    std::optional<redis::Connection> connection_;
    std::optional<Raw> raw_;
    std::optional<Engine> engine_;
};

}  // namespace workq::test
