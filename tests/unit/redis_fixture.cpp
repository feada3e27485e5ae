#include "redis_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "queue/client.hpp"
#include "redis/url.hpp"
#include "util/ids.hpp"

namespace workq::test {
namespace {

// The private redis-server this binary started, if any; stopped by pid when the tests end.
class PrivateServer {
  public:
    static PrivateServer& instance() {
        static PrivateServer server;
        return server;
    }

    const redis::Endpoint& endpoint() {
        std::lock_guard lock(mutex_);
        if (!endpoint_) start();
        return *endpoint_;
    }

    void stop() {
        std::lock_guard lock(mutex_);
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            bool gone =
                wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 5000ms, 5ms);
            if (!gone) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
            }
            pid_ = -1;
        }
        if (!dir_.empty()) {
            std::error_code ignored;
            std::filesystem::remove_all(dir_, ignored);
            dir_.clear();
        }
    }

  private:
    void start() {
        if (const char* url = std::getenv("WORKQ_TEST_REDIS_URL"); url && *url) {
            endpoint_ = redis::parse_url(url);
            return;
        }
        auto base = std::filesystem::temp_directory_path() / "workq-unit.XXXXXX";
        std::string pattern = base.string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        dir_ = pattern;
        std::string socket = dir_ + "/r.sock";
        std::string log = dir_ + "/redis.log";

        pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            // The server must not outlive the tests, even when they crash.
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (::getppid() != parent) ::_exit(1);
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            ::execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", socket.c_str(),
                     "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir",
                     dir_.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        redis::Endpoint endpoint;
        endpoint.kind = redis::Endpoint::Kind::unix_socket;
        endpoint.socket_path = socket;
        bool up = wait_until(
            [&] {
                if (!std::filesystem::exists(socket)) return false;
                try {
                    auto c = redis::Connection::open(endpoint);
                    return c.call({"PING"}).as_string() == "PONG";
                } catch (const std::exception&) {
                    return false;
                }
            },
            10000ms, 10ms);
        if (!up) {
            stop();
            throw std::runtime_error("redis-server did not start (see " + log + ")");
        }
        endpoint_ = endpoint;
    }

    std::mutex mutex_;
    std::optional<redis::Endpoint> endpoint_;
    pid_t pid_ = -1;
    std::string dir_;
};

// Stops the private server once every test has run.
class ServerEnvironment : public ::testing::Environment {
  public:
    void TearDown() override { PrivateServer::instance().stop(); }
};
[[maybe_unused]] const auto* const server_environment =
    ::testing::AddGlobalTestEnvironment(new ServerEnvironment);

}  // namespace

const redis::Endpoint& test_endpoint() {
    return PrivateServer::instance().endpoint();
}

redis::Connection connect_test_server() {
    return redis::Connection::open(test_endpoint());
}

bool wait_until(const std::function<bool()>& condition, Millis timeout, Millis interval) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(interval);
    }
}

std::string unique_namespace(std::string_view hint) {
    static std::atomic<int> counter{0};
    std::string clean;
    for (char ch : hint)
        clean += (std::isalnum(static_cast<unsigned char>(ch)) != 0) ? ch : '-';
    if (clean.size() > 40) clean.resize(40);
    return fmt::format("ut-{}-{}-{}-{}", clean, ::getpid(), counter++, random_token(6));
}

// --- Raw -----------------------------------------------------------------------------------------

redis::Reply Raw::call(std::initializer_list<std::string_view> args) {
    return c_->call(args);
}

long long Raw::server_now_ms() {
    auto reply = call({"TIME"});
    return reply.at(0).as_integer() * 1000 + reply.at(1).as_integer() / 1000;
}

std::optional<std::string> Raw::get(const std::string& key) {
    return call({"GET", key}).as_optional_string();
}

std::optional<std::string> Raw::hget(const std::string& key, std::string_view field) {
    return call({"HGET", key, field}).as_optional_string();
}

std::map<std::string, std::string> Raw::hgetall(const std::string& key) {
    std::map<std::string, std::string> out;
    auto reply = call({"HGETALL", key});
    const auto& items = reply.as_array();
    for (std::size_t i = 0; i + 1 < items.size(); i += 2)
        out[items[i].as_string()] = items[i + 1].as_string();
    return out;
}

std::optional<long long> Raw::zscore(const std::string& key, std::string_view member) {
    auto reply = call({"ZSCORE", key, member});
    if (reply.is_nil()) return std::nullopt;
    return std::llround(std::stod(reply.as_string()));
}

std::vector<std::string> Raw::lrange(const std::string& key) {
    std::vector<std::string> out;
    auto reply = call({"LRANGE", key, "0", "-1"});
    for (const auto& item : reply.as_array())
        out.push_back(item.as_string());
    return out;
}

std::vector<std::string> Raw::zrange(const std::string& key) {
    std::vector<std::string> out;
    auto reply = call({"ZRANGE", key, "0", "-1"});
    for (const auto& item : reply.as_array())
        out.push_back(item.as_string());
    return out;
}

std::vector<std::pair<std::string, long long>> Raw::zrange_scores(const std::string& key) {
    std::vector<std::pair<std::string, long long>> out;
    auto reply = call({"ZRANGE", key, "0", "-1", "WITHSCORES"});
    const auto& items = reply.as_array();
    for (std::size_t i = 0; i + 1 < items.size(); i += 2)
        out.emplace_back(items[i].as_string(), std::llround(std::stod(items[i + 1].as_string())));
    return out;
}

long long Raw::llen(const std::string& key) {
    return call({"LLEN", key}).as_integer();
}

long long Raw::zcard(const std::string& key) {
    return call({"ZCARD", key}).as_integer();
}

bool Raw::exists(const std::string& key) {
    return call({"EXISTS", key}).as_integer() == 1;
}

long long Raw::pttl(const std::string& key) {
    return call({"PTTL", key}).as_integer();
}

std::string Raw::type(const std::string& key) {
    return call({"TYPE", key}).as_string();
}

std::vector<std::string> Raw::waiting_in_claim_order(const queue::QueueKeys& keys) {
    std::vector<std::string> out;
    auto reply = call({"ZREVRANGE", keys.priorities(), "0", "-1"});
    for (const auto& item : reply.as_array())
        for (auto& id : lrange(keys.prefix() + "waiting:" + item.as_string()))
            out.push_back(std::move(id));
    return out;
}

long long Raw::counter(const queue::QueueKeys& keys, std::string_view field) {
    auto value = hget(keys.meta(), field);
    return value ? std::stoll(*value) : 0;
}

// --- Engine --------------------------------------------------------------------------------------

redis::Reply Engine::run(const queue::ScriptCall& call) {
    return queue::run(*c_, call);
}

std::vector<queue::EnqueueResult> Engine::enqueue(
    const queue::QueueKeys& keys, const std::vector<std::pair<std::string, std::string>>& jobs,
    const queue::EnqueueOptions& options) {
    std::vector<queue::NewJob> new_jobs;
    for (const auto& [id, payload] : jobs)
        new_jobs.push_back({id, payload});
    return queue::parse_enqueue(run(queue::enqueue_call(keys, options, new_jobs)), new_jobs);
}

queue::EnqueueStatus Engine::enqueue_one(const queue::QueueKeys& keys, const std::string& id,
                                         const queue::EnqueueOptions& options,
                                         const std::string& payload) {
    auto results = enqueue(keys, {{id, payload}}, options);
    if (results.size() != 1) throw std::logic_error("enqueue: expected one result");
    return results[0].status;
}

queue::ClaimResult Engine::claim(const std::vector<queue::QueueKeys>& queues,
                                 std::string_view worker, Millis lease, std::size_t max_jobs) {
    auto token_base = random_token(12);
    return queue::parse_claim(run(queue::claim_call(queues, worker, token_base, lease, max_jobs)));
}

queue::ClaimResult Engine::claim_ahead(const queue::QueueKeys& keys, std::size_t max_jobs,
                                       std::size_t ahead, std::string_view worker, Millis lease) {
    auto token_base = random_token(12);
    std::vector<queue::QueueKeys> queues{keys};
    return queue::parse_claim(
        run(queue::claim_call(queues, worker, token_base, lease, max_jobs, ahead)));
}

long long Engine::start(const queue::QueueKeys& keys, std::string_view id, std::string_view token) {
    std::vector<queue::HeldJob> held{{id, token}};
    const auto& reply = run(queue::start_call(keys, held));
    if (reply.as_array().size() != 1) throw std::logic_error("start: expected one status");
    return reply.at(0).as_integer();
}

queue::Settle Engine::complete(const queue::QueueKeys& keys, std::string_view id,
                               std::string_view token, std::string_view result, Millis ttl) {
    queue::Completion job{id, token, result};
    auto settled = queue::parse_complete(run(queue::complete_call(keys, {&job, 1}, ttl)));
    if (settled.size() != 1) throw std::logic_error("complete: expected one verdict");
    return settled[0];
}

queue::FailOutcome Engine::fail(const queue::QueueKeys& keys, std::string_view id,
                                std::string_view token, std::optional<Millis> retry_delay,
                                std::string_view error, Millis ttl) {
    return queue::parse_fail(
        run(queue::fail_call(keys, id, token, error, "exit", retry_delay, ttl)));
}

queue::Settle Engine::release(const queue::QueueKeys& keys, std::string_view id,
                              std::string_view token, Millis ttl) {
    return queue::parse_settle(run(queue::release_call(keys, id, token, ttl)));
}

queue::RenewStatus Engine::renew(const queue::QueueKeys& keys, std::string_view id,
                                 std::string_view token, Millis lease) {
    std::vector<queue::HeldJob> held{{id, token}};
    auto statuses = queue::parse_renew(run(queue::renew_call(keys, lease, held)));
    if (statuses.size() != 1) throw std::logic_error("renew: expected one status");
    return statuses[0];
}

long long Engine::reap(const queue::QueueKeys& keys, std::size_t limit, Millis ttl) {
    return reap_step(keys, limit, ttl).taken_back;
}

queue::ReapStep Engine::reap_step(const queue::QueueKeys& keys, std::size_t limit, Millis ttl) {
    return queue::parse_reap(run(queue::reap_call(keys, limit, ttl)));
}

std::vector<queue::CancelResult> Engine::cancel(const queue::QueueKeys& keys,
                                                const std::vector<std::string>& ids, Millis ttl) {
    return queue::parse_cancel(run(queue::cancel_call(keys, ttl, ids)));
}

queue::PurgeStep Engine::purge(const queue::QueueKeys& keys, queue::PurgeWhich which,
                               std::size_t batch, Millis ttl) {
    return queue::parse_purge(run(queue::purge_call(keys, which, batch, ttl)));
}

long long Engine::set_paused(const queue::QueueKeys& keys, bool paused) {
    return run(queue::set_paused_call(keys, paused)).as_integer();
}

std::vector<queue::RequeueOutcome> Engine::requeue(const queue::QueueKeys& keys,
                                                   const std::vector<std::string>& ids,
                                                   std::size_t oldest, std::size_t skip) {
    return queue::parse_requeue_outcomes(run(queue::dead_requeue_call(keys, ids, oldest, skip)));
}

std::vector<queue::IdOutcome> Engine::delete_dead(const queue::QueueKeys& keys,
                                                  const std::vector<std::string>& ids,
                                                  std::size_t oldest) {
    return queue::parse_id_outcomes(run(queue::dead_delete_call(keys, ids, oldest)));
}

long long Engine::dead_cap(const queue::QueueKeys& keys, long long max_count, Millis max_age) {
    return run(queue::dead_cap_call(keys, max_count, max_age)).as_integer();
}

queue::QueueStats Engine::stats(const queue::QueueKeys& keys) {
    return queue::parse_stats(run(queue::stats_call(keys)));
}

std::optional<queue::JobInfo> Engine::job_info(const queue::QueueKeys& keys, std::string_view id,
                                               bool details) {
    return queue::parse_job_info(run(queue::job_info_call(keys, id, details)), id, keys.queue());
}

// --- RedisTest -----------------------------------------------------------------------------------

void RedisTest::SetUp() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    ns_ = unique_namespace(info ? info->name() : "test");
    connection_.emplace(connect_test_server());
    raw_.emplace(*connection_);
    engine_.emplace(*connection_);
}

void RedisTest::TearDown() {
    if (!connection_) return;
    // Leave the shared server as we found it: every key of this test's namespace goes.
    try {
        auto conn = connect_test_server();
        for (const auto& pattern : {"{" + ns_ + ":*", "{" + ns_ + "}:*"}) {
            std::string cursor = "0";
            do {
                auto reply = conn.call({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
                cursor = reply.at(0).as_string();
                for (const auto& key : reply.at(1).as_array())
                    conn.call({"UNLINK", key.as_string()});
            } while (cursor != "0");
        }
    } catch (const std::exception& error) {
        ADD_FAILURE() << "cannot clean up namespace " << ns_ << ": " << error.what();
    }
}

}  // namespace workq::test
