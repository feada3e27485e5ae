#include "redis/sentinel.hpp"
#include "redis/server_info.hpp"

#include <gtest/gtest.h>

using namespace workq;
using redis::HostPort;
using redis::Reply;

namespace {

Reply text(std::string value) {
    Reply reply;
    reply.type = Reply::Type::string;
    reply.text = std::move(value);
    return reply;
}

Reply array(std::vector<Reply> elements) {
    Reply reply;
    reply.type = Reply::Type::array;
    reply.elements = std::move(elements);
    return reply;
}

Reply error(std::string message) {
    Reply reply;
    reply.type = Reply::Type::error;
    reply.text = std::move(message);
    return reply;
}

}  // namespace

TEST(Sentinel, MasterAddress) {
    auto answer = redis::parse_master_address(array({text("10.0.0.5"), text("6380")}));
    ASSERT_TRUE(answer.master);
    EXPECT_EQ(*answer.master, (HostPort{"10.0.0.5", 6380}));
    EXPECT_FALSE(answer.unknown_master);
}

TEST(Sentinel, UnknownMasterIsNil) {
    auto answer = redis::parse_master_address(Reply{});
    EXPECT_FALSE(answer.master);
    EXPECT_TRUE(answer.unknown_master);
}

TEST(Sentinel, MalformedAnswersAreErrors) {
    for (const auto& reply :
         {array({text("h")}), array({text("h"), text("0")}), array({text("h"), text("6379x")}),
          array({text(""), text("6379")}), text("h:6379"), array({text("h"), text("70000")})}) {
        auto answer = redis::parse_master_address(reply);
        EXPECT_FALSE(answer.master) << reply.describe();
        EXPECT_FALSE(answer.unknown_master);
        EXPECT_FALSE(answer.error.empty());
    }
    auto answer = redis::parse_master_address(error("NOAUTH Authentication required."));
    EXPECT_EQ(answer.error, "NOAUTH Authentication required.");
}

TEST(Sentinel, Role) {
    EXPECT_EQ(redis::role_of(array({text("master"), Reply{}, array({})})), "master");
    EXPECT_EQ(redis::role_of(array({text("slave"), text("h"), text("6379")})), "slave");
    EXPECT_NE(redis::role_of(error("NOPERM")), "master");
    EXPECT_NE(redis::role_of(array({})), "master");
}

TEST(Sentinel, FailoverErrors) {
    EXPECT_TRUE(
        redis::is_failover_error(error("READONLY You can't write against a read only replica.")));
    EXPECT_TRUE(redis::is_failover_error(
        error("UNBLOCKED force unblock from blocking operation, instance state changed")));
    EXPECT_FALSE(redis::is_failover_error(error("NOSCRIPT No matching script")));
    EXPECT_FALSE(redis::is_failover_error(text("READONLY")));
}

TEST(Sentinel, TheSentinelThatAnsweredIsAskedFirst) {
    redis::SentinelSettings settings;
    settings.master_name = "turns";
    settings.sentinels = {{"a", 1}, {"b", 2}, {"c", 3}};
    EXPECT_EQ(redis::sentinels_in_turn(settings), settings.sentinels);
    redis::remember_answer(settings, {"c", 3});
    EXPECT_EQ(redis::sentinels_in_turn(settings),
              (std::vector<HostPort>{{"c", 3}, {"a", 1}, {"b", 2}}));
    // One no longer in the list changes nothing.
    redis::remember_answer(settings, {"z", 9});
    EXPECT_EQ(redis::sentinels_in_turn(settings), settings.sentinels);
}

TEST(Sentinel, TheSentinelConnectionSharesTheTransportSettings) {
    redis::Endpoint endpoint;
    endpoint.username = "alice";
    endpoint.password = "master-pw";
    endpoint.database = 4;
    endpoint.sentinel = redis::SentinelSettings{{{"s", 26379}}, "m", "sentinel-pw"};
    auto node = redis::sentinel_node(endpoint, {"s", 26390});
    EXPECT_EQ(node.host, "s");
    EXPECT_EQ(node.port, 26390);
    EXPECT_EQ(node.database, 0);
    EXPECT_EQ(node.username, "");
    EXPECT_EQ(node.password, "sentinel-pw");
    EXPECT_FALSE(node.sentinel);
}

TEST(ServerInfo, ReplicasAndTheirLag) {
    redis::InfoFields fields{{"role", "master"},
                             {"connected_slaves", "3"},
                             {"slave0", "ip=10.0.0.2,port=6379,state=online,offset=900,lag=0"},
                             {"slave1", "ip=::1,port=6380,state=online,offset=100,lag=11"},
                             {"slave2", "ip=10.0.0.4,port=6379,state=wait_bgsave,offset=0,lag=0"},
                             {"master_repl_offset", "1000"}};
    auto info = redis::replication_info(fields);
    EXPECT_EQ(info.role, "master");
    ASSERT_EQ(info.replicas.size(), 3u);
    EXPECT_EQ(info.replicas[0].address, "10.0.0.2:6379");
    EXPECT_EQ(info.replicas[0].behind_bytes, 100);
    EXPECT_EQ(info.replicas[0].lag_s, 0);
    EXPECT_TRUE(info.replicas[0].in_sync);
    EXPECT_EQ(info.replicas[1].address, "[::1]:6380");
    EXPECT_FALSE(info.replicas[1].in_sync);  // its last acknowledgement is too old
    EXPECT_FALSE(info.replicas[2].in_sync);  // not synchronized yet
    EXPECT_TRUE(redis::replication_info({{"role", "master"}}).replicas.empty());
}
