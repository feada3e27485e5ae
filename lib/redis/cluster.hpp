// Redis Cluster (CONTRACT.md section 10): the pure part of routing a call to the master of its
// slot. Which slot a key hashes to (CRC16 with the hash-tag rule), the slot map read from
// CLUSTER SLOTS, which argument of a command is the key it is routed by, and what a redirecting
// error reply (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) asks for. The connections use these
// (redis/connection.cpp, redis/async_connection.cpp); nothing here does I/O.
//
// workq's keys were made for this: every key of one queue carries the hash tag {NS:QUEUE}, the
// namespace's own keys {NS}, so each script touches one slot and runs on one node.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "redis/reply.hpp"
#include "redis/url.hpp"

namespace workq::redis {

inline constexpr int cluster_slot_count = 16384;

// How many redirects (MOVED, ASK) and waits (TRYAGAIN, CLUSTERDOWN) one call may meet before it
// is an error: a slot moves once in a migration and once more in a failover; more than that in
// one call means the nodes disagree about who owns it (Lettuce and ioredis stop at 5 and 16).
inline constexpr int max_redirects = 16;

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as the cluster specification says.
std::uint16_t crc16(std::string_view data);

// The slot of a key: CRC16 of the key modulo 16384, or of the text between the first '{' and
// the next '}' after it when that text is not empty (the hash tag): "{user1000}.following" and
// "{user1000}.followers" share a slot; "foo{}{bar}" hashes whole.
int key_slot(std::string_view key);

// Which master serves each slot, as CLUSTER SLOTS says.
struct SlotMap {
    std::vector<HostPort> masters;  // each master once, in the order first met
    // Index into `masters` per slot; -1: no master serves it (the cluster is incomplete).
    std::array<std::int16_t, cluster_slot_count> owner{};

    SlotMap() { owner.fill(-1); }
    // The master of `slot`, or nullptr when none serves it.
    const HostPort* master_of(int slot) const;
    // Records that `master` serves `slot` now (a MOVED reply).
    void assign(int slot, const HostPort& master);
    // How many slots have no master.
    int unserved() const;
};

// Reads a reply to CLUSTER SLOTS. A master announced without an address (an empty host) is at
// `asked`'s host, as the specification says. Throws RedisError when the reply has not the shape
// of one.
SlotMap parse_cluster_slots(const Reply& reply, const HostPort& asked);

// The key a command is routed by: the first key of EVAL and EVALSHA (none when numkeys is 0),
// none for the commands that take no key (PING, TIME, INFO, SCRIPT, WAIT, CLUSTER, ...), else
// the first argument. A command with no key goes to any master.
std::optional<std::string_view> routing_key(std::span<const std::string_view> args);
std::optional<std::string_view> routing_key(std::span<const std::string> args);

// What an error reply asks of a cluster client.
struct Redirect {
    enum class Kind {
        none,          // not a redirect: the reply is the command's own
        moved,         // the slot lives on `target` now: update the map, send there
        ask,           // this one command goes to `target`, preceded by ASKING (a migration)
        try_again,     // a multi-key command met a slot in migration: wait, send again
        cluster_down,  // the cluster cannot serve the slot now (a failover): wait, send again
    };
    Kind kind = Kind::none;
    int slot = -1;
    HostPort target;
};

// Reads MOVED/ASK/TRYAGAIN/CLUSTERDOWN error replies. A target written without a host
// (":7001", Redis 7's "unknown endpoint") is at `asked`'s host.
Redirect parse_redirect(const Reply& reply, const HostPort& asked);

// True when an INFO reply (any sections holding "cluster") says cluster_enabled:1.
bool cluster_enabled(const Reply& info);
// True when it says cluster_enabled:0: a server known to run with cluster mode disabled (an
// error reply, or no such line, says nothing).
bool cluster_disabled(const Reply& info);

// The wait before sending again after TRYAGAIN or CLUSTERDOWN, for the `attempt`th time (0
// first): 50 ms doubling to at most 1 s, jittered by +-50% so that many clients do not come
// back together.
std::chrono::milliseconds cluster_retry_delay(int attempt);

// The endpoint for talking to one node of a cluster endpoint: the address the cluster announces
// for it, the same login and TLS settings (its certificate is checked against that address, as
// a Sentinel master's is, unless --tls-server-name names one name for all), database 0, and no
// cluster settings (a node's connection routes nothing).
Endpoint cluster_node(const Endpoint& endpoint, const HostPort& node);

}  // namespace workq::redis
