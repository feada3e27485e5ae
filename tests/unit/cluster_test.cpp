// The pure part of Redis Cluster routing (redis/cluster.hpp): slots, the slot map, routing keys
// and redirects.
#include "redis/cluster.hpp"

#include <gtest/gtest.h>

#include "queue/keys.hpp"
#include "util/errors.hpp"

using namespace workq;
using namespace workq::redis;

TEST(Cluster, Crc16IsXmodem) {
    // The check value of CRC-16/XMODEM, and the cluster specification's example.
    EXPECT_EQ(crc16("123456789"), 0x31C3);
    EXPECT_EQ(crc16(""), 0);
    EXPECT_EQ(key_slot("123456789"), 12739);
}

TEST(Cluster, KnownSlots) {
    // As CLUSTER KEYSLOT answers.
    EXPECT_EQ(key_slot("foo"), 12182);
    EXPECT_EQ(key_slot("bar"), 5061);
    EXPECT_EQ(key_slot("hello"), 866);
}

TEST(Cluster, HashTags) {
    EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
    EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
    // An empty tag: the whole key is hashed.
    EXPECT_EQ(key_slot("foo{}{bar}"), static_cast<int>(crc16("foo{}{bar}") % 16384));
    EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));
    // Only the first '{' and the first '}' after it.
    EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
    EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
    // No closing brace: the whole key.
    EXPECT_EQ(key_slot("foo{bar"), static_cast<int>(crc16("foo{bar") % 16384));
}

TEST(Cluster, QueueKeysShareTheirQueuesSlot) {
    queue::QueueKeys keys("workq", "emails");
    auto slot = key_slot("workq:emails");
    for (const auto& key : {keys.meta(), keys.scheduled(), keys.running(), keys.dead(), keys.wake(),
                            keys.waiting(0), keys.priorities()})
        EXPECT_EQ(key_slot(key), slot) << key;
    queue::NamespaceKeys ns("workq");
    EXPECT_EQ(key_slot(ns.queues()), key_slot(ns.workers()));
}

TEST(Cluster, RoutingKeys) {
    auto key = [](std::initializer_list<std::string_view> args) {
        return routing_key(std::span<const std::string_view>(args.begin(), args.size()));
    };
    EXPECT_EQ(key({"GET", "k"}), "k");
    EXPECT_EQ(key({"zrange", "z", "0", "-1"}), "z");
    EXPECT_EQ(key({"BLPOP", "a", "b", "1"}), "a");
    EXPECT_EQ(key({"EVALSHA", "abc", "2", "k1", "k2", "arg"}), "k1");
    EXPECT_EQ(key({"eval", "return 1", "1", "k1"}), "k1");
    EXPECT_FALSE(key({"EVALSHA", "abc", "0", "arg"}));
    EXPECT_FALSE(key({"EVALSHA", "abc", "x", "arg"}));
    EXPECT_FALSE(key({"EVALSHA", "abc"}));
    for (auto keyless : {"TIME", "PING", "INFO", "WAIT", "SCRIPT", "CLUSTER", "ROLE", "time"})
        EXPECT_FALSE(key({keyless, "x", "y"})) << keyless;
    EXPECT_FALSE(key({"TIME"}));
    std::vector<std::string> owned{"SADD", "s", "m"};
    EXPECT_EQ(routing_key(std::span<const std::string>(owned)), "s");
}

namespace {
Reply error(std::string text) {
    Reply reply;
    reply.type = Reply::Type::error;
    reply.text = std::move(text);
    return reply;
}
Reply integer(long long value) {
    Reply reply;
    reply.type = Reply::Type::integer;
    reply.integer = value;
    return reply;
}
Reply string(std::string text) {
    Reply reply;
    reply.type = Reply::Type::string;
    reply.text = std::move(text);
    return reply;
}
Reply array(std::vector<Reply> elements) {
    Reply reply;
    reply.type = Reply::Type::array;
    reply.elements = std::move(elements);
    return reply;
}
}  // namespace

TEST(Cluster, Redirects) {
    HostPort asked{"10.0.0.1", 7000};
    auto moved = parse_redirect(error("MOVED 3999 127.0.0.1:6381"), asked);
    EXPECT_EQ(moved.kind, Redirect::Kind::moved);
    EXPECT_EQ(moved.slot, 3999);
    EXPECT_EQ(moved.target, (HostPort{"127.0.0.1", 6381}));
    auto ask = parse_redirect(error("ASK 12 ::1:7002"), asked);
    EXPECT_EQ(ask.kind, Redirect::Kind::ask);
    EXPECT_EQ(ask.target, (HostPort{"::1", 7002}));
    // No host: the one asked.
    EXPECT_EQ(parse_redirect(error("MOVED 1 :7005"), asked).target, (HostPort{"10.0.0.1", 7005}));
    EXPECT_EQ(
        parse_redirect(error("TRYAGAIN Multiple keys request during rehashing of slot"), asked)
            .kind,
        Redirect::Kind::try_again);
    EXPECT_EQ(parse_redirect(error("CLUSTERDOWN The cluster is down"), asked).kind,
              Redirect::Kind::cluster_down);
    for (auto text : {"MOVED", "MOVED x 1.2.3.4:5", "MOVED 16384 h:1", "MOVED 1 h", "MOVED 1 h:0",
                      "ERR MOVED 1 h:1", "NOSCRIPT", "CROSSSLOT Keys in request don't hash"})
        EXPECT_EQ(parse_redirect(error(text), asked).kind, Redirect::Kind::none) << text;
    EXPECT_EQ(parse_redirect(string("MOVED 1 h:1"), asked).kind, Redirect::Kind::none);
}

TEST(Cluster, SlotMapFromClusterSlots) {
    HostPort asked{"seed", 7000};
    auto node = [](std::string host, long long port) {
        return array({string(std::move(host)), integer(port), string("id")});
    };
    auto reply = array({
        array({integer(0), integer(5460), node("127.0.0.1", 7000), node("127.0.0.1", 7003)}),
        array({integer(5461), integer(10922), node("127.0.0.1", 7001)}),
        array({integer(10923), integer(16000), node("", 7002)}),
        array({integer(16001), integer(16383), node("127.0.0.1", 7001)}),
    });
    auto map = parse_cluster_slots(reply, asked);
    EXPECT_EQ(map.masters.size(), 3u);
    EXPECT_EQ(*map.master_of(0), (HostPort{"127.0.0.1", 7000}));
    EXPECT_EQ(*map.master_of(5461), (HostPort{"127.0.0.1", 7001}));
    EXPECT_EQ(*map.master_of(12000), (HostPort{"seed", 7002}));
    EXPECT_EQ(*map.master_of(16383), (HostPort{"127.0.0.1", 7001}));
    EXPECT_EQ(map.unserved(), 0);
    EXPECT_EQ(map.master_of(16384), nullptr);
    map.assign(3, {"127.0.0.1", 7009});
    EXPECT_EQ(*map.master_of(3), (HostPort{"127.0.0.1", 7009}));
    EXPECT_EQ(map.masters.size(), 4u);

    auto partial =
        parse_cluster_slots(array({array({integer(0), integer(99), node("h", 1)})}), asked);
    EXPECT_EQ(partial.unserved(), 16384 - 100);
    EXPECT_EQ(partial.master_of(100), nullptr);

    EXPECT_THROW(
        parse_cluster_slots(error("ERR This instance has cluster support disabled"), asked),
        RedisError);
    EXPECT_THROW(parse_cluster_slots(array({array({integer(0), integer(1)})}), asked), RedisError);
    EXPECT_THROW(parse_cluster_slots(array({array({integer(5), integer(1), node("h", 1)})}), asked),
                 RedisError);
    EXPECT_THROW(
        parse_cluster_slots(array({array({integer(0), integer(16384), node("h", 1)})}), asked),
        RedisError);
}

TEST(Cluster, InfoSaysClusterEnabled) {
    EXPECT_TRUE(cluster_enabled(string("# Cluster\r\ncluster_enabled:1\r\n")));
    EXPECT_FALSE(cluster_enabled(string("# Cluster\r\ncluster_enabled:0\r\n")));
    EXPECT_FALSE(cluster_enabled(string("")));
    EXPECT_FALSE(cluster_enabled(error("NOPERM")));
}

TEST(Cluster, RetryDelaysAreBoundedAndJittered) {
    for (int attempt = 0; attempt < 40; ++attempt) {
        auto delay = cluster_retry_delay(attempt);
        EXPECT_GE(delay.count(), 25);
        EXPECT_LE(delay.count(), 1500);
    }
}
