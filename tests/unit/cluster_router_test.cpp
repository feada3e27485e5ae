// The cluster routers (redis/connection.cpp, redis/async_connection.cpp) against fake nodes: a
// loopback server per node whose replies the test writes (MOVED, CLUSTERDOWN, a hang-up), for
// the paths a real cluster reaches only by luck of timing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>

#include "redis/async_connection.hpp"
#include "redis/cluster.hpp"
#include "redis/connection.hpp"
#include "util/errors.hpp"

namespace {

using namespace workq;
using Command = std::vector<std::string>;

// Answers each command with what `respond` returns (raw RESP); an empty answer hangs up.
class FakeNode {
  public:
    using Responder = std::function<std::string(const Command&)>;
    explicit FakeNode(Responder respond) : respond_(std::move(respond)) {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address);
        ::listen(listener_, 16);
        socklen_t length = sizeof address;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeNode() {
        stop_ = true;
        thread_.join();
        for (auto& client : clients_)
            ::close(client.first);
        ::close(listener_);
    }
    int port() const { return port_; }
    std::vector<Command> seen() {
        std::lock_guard lock(mutex_);
        return seen_;
    }
    // How many commands each read from a client held, in order.
    std::vector<std::size_t> batches() {
        std::lock_guard lock(mutex_);
        return batches_;
    }

  private:
    static std::optional<Command> parse(std::string& buffer) {
        std::size_t at = 0;
        auto line = [&]() -> std::optional<std::string> {
            auto end = buffer.find("\r\n", at);
            if (end == std::string::npos) return std::nullopt;
            auto text = buffer.substr(at + 1, end - at - 1);
            at = end + 2;
            return text;
        };
        auto count = line();
        if (!count) return std::nullopt;
        Command command;
        for (int i = 0; i < std::stoi(*count); ++i) {
            auto size = line();
            if (!size || buffer.size() < at + std::stoul(*size) + 2) return std::nullopt;
            command.push_back(buffer.substr(at, std::stoul(*size)));
            at += std::stoul(*size) + 2;
        }
        buffer.erase(0, at);
        return command;
    }
    void serve() {
        while (!stop_) {
            std::vector<pollfd> watched{{listener_, POLLIN, 0}};
            for (auto& client : clients_)
                watched.push_back({client.first, POLLIN, 0});
            if (::poll(watched.data(), watched.size(), 20) <= 0) continue;
            if (watched[0].revents) clients_[::accept(listener_, nullptr, nullptr)] = "";
            for (std::size_t i = 1; i < watched.size(); ++i) {
                if (!watched[i].revents) continue;
                int fd = watched[i].fd;
                char chunk[4096];
                auto got = ::read(fd, chunk, sizeof chunk);
                bool hang_up = got <= 0;
                if (!hang_up) clients_[fd].append(chunk, static_cast<std::size_t>(got));
                std::size_t batch = 0;
                while (!hang_up) {
                    auto command = parse(clients_[fd]);
                    if (!command) break;
                    {
                        std::lock_guard lock(mutex_);
                        seen_.push_back(*command);
                    }
                    ++batch;
                    auto answer = respond_(*command);
                    if (answer.empty())
                        hang_up = true;
                    else
                        (void)!::write(fd, answer.data(), answer.size());
                }
                if (batch > 0) {
                    std::lock_guard lock(mutex_);
                    batches_.push_back(batch);
                }
                if (hang_up) {
                    ::close(fd);
                    clients_.erase(fd);
                }
            }
        }
    }
    Responder respond_;
    int listener_ = -1;
    int port_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::map<int, std::string> clients_;
    std::mutex mutex_;
    std::vector<Command> seen_;
    std::vector<std::size_t> batches_;
};

// CLUSTER SLOTS: every slot on the node at `port`.
std::string all_slots_on(int port) {
    return "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:" + std::to_string(port) + "\r\n";
}

redis::Endpoint cluster_at(int port) {
    redis::Endpoint endpoint;
    endpoint.kind = redis::Endpoint::Kind::tcp;
    endpoint.host = "127.0.0.1";
    endpoint.port = port;
    endpoint.cluster = redis::ClusterSettings{{redis::HostPort{"127.0.0.1", port}}};
    return endpoint;
}

bool is(const Command& command, std::string_view name) {
    return !command.empty() && command[0] == name;
}

// A write redirected by a demoted old master (MOVED) ran on the new one: WAIT asks that one
// only; a replica refuses WAIT, so asking the old one too failed a durable write.
TEST(ClusterRouter, WaitAsksTheNodeThatRanTheWriteNotTheOneThatRedirectedIt) {
    FakeNode fresh([](const Command& command) -> std::string {
        if (is(command, "SET")) return "+OK\r\n";
        if (is(command, "WAIT")) return ":1\r\n";
        return "-ERR unexpected\r\n";
    });
    std::atomic<int> demoted_port{0};
    FakeNode demoted([&](const Command& command) -> std::string {
        if (is(command, "CLUSTER")) return all_slots_on(demoted_port);  // a stale map
        if (is(command, "SET"))
            return "-MOVED " + std::to_string(redis::key_slot("k")) +
                   " 127.0.0.1:" + std::to_string(fresh.port()) + "\r\n";
        if (is(command, "WAIT")) return "-ERR WAIT cannot be used with replica instances.\r\n";
        return "-ERR unexpected\r\n";
    });
    demoted_port = demoted.port();

    auto connection = redis::Connection::open(cluster_at(demoted.port()));
    connection.begin_durable_writes();
    EXPECT_EQ(connection.command({"SET", "k", "v"}).text, "OK");
    EXPECT_EQ(connection.wait_for_replicas(1, std::chrono::milliseconds(100)), 1);
    for (const auto& command : demoted.seen())
        EXPECT_FALSE(is(command, "WAIT"));
}

// A worker's settle waiting out a CLUSTERDOWN when the router fails (another command's node
// hung up): the router answers it (nullopt: send again once reconnected) at once, even when
// its owner drops the router before the retry was due, as a worker that reconnects does.
TEST(ClusterRouter, ACommandWaitingOutClusterDownIsAnsweredWhenTheRouterFails) {
    std::atomic<int> port{0};
    FakeNode node([&](const Command& command) -> std::string {
        if (is(command, "CLUSTER")) return all_slots_on(port);
        if (is(command, "SET")) return "-CLUSTERDOWN The cluster is down\r\n";
        if (is(command, "GET")) return "";  // hang up
        return "+OK\r\n";                   // the handshake
    });
    port = node.port();

    boost::asio::io_context io;
    std::shared_ptr<redis::AsyncConnection> router;
    int answers = 0;
    std::optional<redis::Reply> answer{redis::Reply{}};
    bool lost = false;
    router = redis::AsyncConnection::open(
        io, cluster_at(node.port()), std::chrono::seconds(2),
        [&](std::optional<std::string> error) {
            ASSERT_FALSE(error) << *error;
            router->command(
                {"SET", "k", "v"},
                [&](std::optional<redis::Reply> reply) {
                    ++answers;
                    answer = std::move(reply);
                    io.stop();
                },
                std::chrono::seconds(5));
            router->command(
                {"GET", "k"}, [](auto) {}, std::chrono::seconds(5));
        },
        [&](const std::string&) {
            lost = true;
            // As Worker::connect_commands does on the reconnect: the old router goes.
            boost::asio::post(io, [&] { router.reset(); });
        });
    io.run_for(std::chrono::seconds(3));
    EXPECT_TRUE(lost);
    EXPECT_EQ(answers, 1);
    EXPECT_FALSE(answer);
}

// A pipeline whose entries end on several nodes (one redirected mid-way) returns the replies in
// the order the commands were appended.
TEST(ClusterRouter, APipelineAcrossNodesRepliesInOrder) {
    FakeNode other([](const Command& command) -> std::string {
        if (is(command, "GET")) return "$3\r\nB:" + command[1] + "\r\n";
        return "-ERR unexpected\r\n";
    });
    std::atomic<int> port{0};
    FakeNode first([&](const Command& command) -> std::string {
        if (is(command, "CLUSTER")) return all_slots_on(port);
        if (is(command, "GET") && command[1] == "b")
            return "-MOVED " + std::to_string(redis::key_slot("b")) +
                   " 127.0.0.1:" + std::to_string(other.port()) + "\r\n";
        if (is(command, "GET")) return "$3\r\nA:" + command[1] + "\r\n";
        return "-ERR unexpected\r\n";
    });
    port = first.port();

    auto connection = redis::Connection::open(cluster_at(first.port()));
    connection.append({"GET", "a"});
    connection.append({"GET", "b"});
    connection.append({"GET", "c"});
    EXPECT_EQ(connection.read_reply().text, "A:a");
    EXPECT_EQ(connection.read_reply().text, "B:b");
    EXPECT_EQ(connection.read_reply().text, "A:c");
    // The slot map learned from MOVED: the next call goes straight there.
    EXPECT_EQ(connection.command({"GET", "b"}).text, "B:b");
}

// ASK: ASKING then the command, on the target's connection, the one right after the other; the
// map is not changed (the next call asks the old owner again).
TEST(ClusterRouter, AskSendsAskingRightBeforeTheCommandOnTheTarget) {
    FakeNode target([](const Command& command) -> std::string {
        if (is(command, "ASKING")) return "+OK\r\n";
        if (is(command, "GET")) return "$1\r\nv\r\n";
        return "-ERR unexpected\r\n";
    });
    std::atomic<int> port{0};
    FakeNode source([&](const Command& command) -> std::string {
        if (is(command, "CLUSTER")) return all_slots_on(port);
        if (is(command, "GET"))
            return "-ASK " + std::to_string(redis::key_slot(command[1])) +
                   " 127.0.0.1:" + std::to_string(target.port()) + "\r\n";
        return "-ERR unexpected\r\n";
    });
    port = source.port();

    auto connection = redis::Connection::open(cluster_at(source.port()));
    EXPECT_EQ(connection.command({"GET", "x"}).text, "v");
    EXPECT_EQ(connection.command({"GET", "x"}).text, "v");
    auto seen = target.seen();
    ASSERT_EQ(seen.size(), 4u);
    for (std::size_t i = 0; i < seen.size(); i += 2) {
        EXPECT_TRUE(is(seen[i], "ASKING"));
        EXPECT_TRUE(is(seen[i + 1], "GET"));
    }
    auto asked_source = 0;
    for (const auto& command : source.seen())
        asked_source += is(command, "GET");
    EXPECT_EQ(asked_source, 2);
}

// Two nodes that send each other the slot (MOVED back and forth) end in an error reply after
// max_redirects, not in a loop.
TEST(ClusterRouter, MovedBackAndForthStopsAtTheRedirectCap) {
    std::atomic<int> a_port{0}, b_port{0};
    auto node = [&](std::atomic<int>& to) {
        return [&](const Command& command) -> std::string {
            if (is(command, "CLUSTER")) return all_slots_on(a_port);
            if (is(command, "GET"))
                return "-MOVED " + std::to_string(redis::key_slot(command[1])) +
                       " 127.0.0.1:" + std::to_string(to.load()) + "\r\n";
            return "-ERR unexpected\r\n";
        };
    };
    FakeNode a(node(b_port));
    FakeNode b(node(a_port));
    a_port = a.port();
    b_port = b.port();

    auto connection = redis::Connection::open(cluster_at(a.port()));
    auto reply = connection.command({"GET", "x"});
    EXPECT_TRUE(reply.is_error());
    EXPECT_TRUE(reply.text.starts_with("MOVED")) << reply.text;
    auto gets = 0;
    for (auto* fake : {&a, &b})
        for (const auto& command : fake->seen())
            gets += is(command, "GET");
    EXPECT_EQ(gets, redis::max_redirects + 1);
}

// One server named: AUTH, SELECT and the INFO cluster probe go in one write (one round trip on
// the way in), and a refused login still says so, not what the commands after it met.
TEST(ClusterRouter, HandshakeAndClusterProbeGoInOneWrite) {
    FakeNode server([](const Command& command) -> std::string {
        if (is(command, "AUTH"))
            return command.back() == "right" ? "+OK\r\n" : "-WRONGPASS invalid password\r\n";
        if (is(command, "SELECT")) return "+OK\r\n";
        if (is(command, "INFO")) return "$28\r\n# Cluster\r\ncluster_enabled:0\r\n";
        if (is(command, "PING")) return "+PONG\r\n";
        return "-ERR unexpected\r\n";
    });
    auto url = "redis://:right@127.0.0.1:" + std::to_string(server.port()) + "/2";
    auto connection = redis::Connection::open(redis::parse_url(url));
    EXPECT_FALSE(connection.is_cluster());
    EXPECT_EQ(connection.command({"PING"}).text, "PONG");
    auto seen = server.seen();
    ASSERT_GE(seen.size(), 3u);
    EXPECT_TRUE(is(seen[0], "AUTH"));
    EXPECT_TRUE(is(seen[1], "SELECT"));
    EXPECT_TRUE(is(seen[2], "INFO"));
    ASSERT_FALSE(server.batches().empty());
    EXPECT_EQ(server.batches().front(), 3u);

    auto wrong = "redis://:wrong@127.0.0.1:" + std::to_string(server.port()) + "/2";
    try {
        redis::Connection::open(redis::parse_url(wrong));
        ADD_FAILURE() << "a wrong password was accepted";
    } catch (const RedisError& error) {
        EXPECT_NE(std::string(error.what()).find("cannot log in"), std::string::npos)
            << error.what();
    }
}

// The function an FCALL names (redis/script.hpp): the plain twin only where the connection's
// own login heard cluster_enabled:0; the guarded one on a cluster, where INFO was refused, and
// on a worker's connection that did not ask.
const redis::ScriptSource guarded_script{"s",     "return 1", "0123",
                                         "lib_s", "lib_s_n",  "#!lua name=lib"};

// A single server (INFO cluster answers `info`, raw RESP) or, with `cluster`, a cluster's only
// node: every FCALL it is sent is recorded.
struct ScriptNode {
    explicit ScriptNode(std::string info)
        : node([this, info](const Command& command) -> std::string {
              if (is(command, "CLUSTER")) return all_slots_on(port);
              if (is(command, "INFO")) return info;
              if (is(command, "FCALL")) return ":1\r\n";
              return "+OK\r\n";
          }) {
        port = node.port();
    }
    std::vector<std::string> fcalls() {
        std::vector<std::string> names;
        for (const auto& command : node.seen())
            if (is(command, "FCALL")) names.push_back(command.at(1));
        return names;
    }
    std::atomic<int> port{0};
    FakeNode node;
};

const std::string plain_info = "$28\r\n# Cluster\r\ncluster_enabled:0\r\n";
const std::string cluster_info = "$28\r\n# Cluster\r\ncluster_enabled:1\r\n";
const std::string refused_info =
    "-NOPERM this user has no permissions to run the 'info' command\r\n";

redis::Endpoint server_at(int port) {
    redis::Endpoint endpoint;
    endpoint.kind = redis::Endpoint::Kind::tcp;
    endpoint.host = "127.0.0.1";
    endpoint.port = port;
    return endpoint;
}

std::string run_blocking(const redis::Endpoint& endpoint, ScriptNode& server) {
    auto connection = redis::Connection::open(endpoint);
    std::vector<std::string_view> keys{"{q}:k"};
    EXPECT_EQ(connection.run_script(guarded_script, keys, {}).integer, 1);
    auto names = server.fcalls();
    return names.empty() ? "" : names.back();
}

std::string run_async(const redis::Endpoint& endpoint, ScriptNode& server, bool ask) {
    boost::asio::io_context io;
    std::shared_ptr<redis::AsyncConnection> connection;
    bool answered = false;
    connection = redis::AsyncConnection::open(
        io, endpoint, std::chrono::seconds(2),
        [&](std::optional<std::string> error) {
            ASSERT_FALSE(error) << *error;
            std::vector<std::string> keys{"{q}:k"};
            connection->script(guarded_script, keys, {}, [&](std::optional<redis::Reply> reply) {
                answered = reply && reply->integer == 1;
                io.stop();
            });
        },
        [](const std::string&) {}, ask);
    io.run_for(std::chrono::seconds(3));
    EXPECT_TRUE(answered);
    auto names = server.fcalls();
    return names.empty() ? "" : names.back();
}

TEST(ScriptGuard, APlainServerGetsTheUnguardedFunction) {
    ScriptNode server(plain_info);
    EXPECT_EQ(run_blocking(server_at(server.port), server), "lib_s_n");
    EXPECT_EQ(run_async(server_at(server.port), server, true), "lib_s_n");
    // A connection that did not ask (the worker's waiting ones) knows nothing.
    EXPECT_EQ(run_async(server_at(server.port), server, false), "lib_s");
}

TEST(ScriptGuard, AServerThatRefusesInfoKeepsTheGuard) {
    ScriptNode server(refused_info);
    EXPECT_EQ(run_blocking(server_at(server.port), server), "lib_s");
    EXPECT_EQ(run_async(server_at(server.port), server, true), "lib_s");
}

TEST(ScriptGuard, AClusterKeepsTheGuard) {
    ScriptNode node(cluster_info);
    // Found out from one server's INFO, and named as a cluster (the router's own connections
    // to its nodes ask nothing).
    EXPECT_EQ(run_blocking(server_at(node.port), node), "lib_s");
    EXPECT_EQ(run_blocking(cluster_at(node.port), node), "lib_s");
    EXPECT_EQ(run_async(cluster_at(node.port), node, true), "lib_s");
    for (const auto& name : node.fcalls())
        EXPECT_EQ(name, "lib_s");
}

}  // namespace
