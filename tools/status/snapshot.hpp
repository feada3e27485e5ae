// One look at the namespace: the server, every queue's counts, every worker. The server work
// is O(queues + workers) whatever the queues' lengths: queues come from the namespace's set
// (no KEYS or SCAN), counts from one read-only script per queue, in one pipelined round trip.
#pragma once

#include <string>
#include <vector>

#include "cli/server.hpp"
#include "queue/registry.hpp"
#include "queue/transitions.hpp"
#include "redis/connection.hpp"
#include "redis/server_info.hpp"

namespace workq::status {

struct QueueSnapshot {
    std::string name;
    queue::QueueStats stats;  // all zero when damaged
    // Non-empty: a structure of the queue holds the wrong type (README, "Damaged data"); its
    // counts are unknown. The other queues are read as usual.
    std::string damage;
    std::string node;  // on a cluster, the master serving the queue's slot ("host:port")
    int slot = -1;     // on a cluster, the queue's slot
    // On a cluster, its slot was migrating between two masters when the counts were read, and
    // stayed so for longer than the tools wait (TRYAGAIN): its counts are unknown (all zero).
    bool counts_migrating = false;
};

// A slot on its way from one master to another (CLUSTER SETSLOT MIGRATING on `from`,
// IMPORTING on `to`), as CLUSTER NODES on each master says ("[slot->-id]", "[slot-<-id]").
struct SlotMigration {
    int slot = -1;
    std::string from, to;      // host:port ("?" when the other side is not known)
    bool from_marked = false;  // the source says MIGRATING
    bool to_marked = false;    // the target says IMPORTING
};

// A master of a cluster, as the slot map says.
struct ClusterMaster {
    std::string address;  // host:port
    int slots = 0;        // how many of the 16384 slots it serves
};

struct ServerSnapshot {
    std::string url;  // as the tools reach it, no password
    bool embedded = false;
    // How the bytes travel: "TCP", "Unix socket", or "TLS 1.3 (cipher), server verified as
    // NAME" (redis::Connection::transport_security()).
    std::string transport;
    bool tls = false;
    std::string redis_version;
    std::vector<std::string> warnings;
    // The topology (CONTRACT.md section 10): "standalone", "sentinel" or "cluster"; through
    // Sentinel, the master's name, the address the sentinels named, and the sentinel that
    // answered; on a cluster, its masters (each queue names its own: QueueSnapshot::node).
    std::string topology = "standalone";
    std::vector<ClusterMaster> cluster_masters;
    std::vector<SlotMigration> migrations;  // on a cluster, by slot
    std::string master_name, master_address, sentinel;
    std::vector<std::string> sentinels;
    std::vector<redis::ReplicaInfo> replicas;  // as the master sees them
    // No replica in sync where some are expected (Sentinel, or replicas attached): --check
    // warns.
    bool no_replica_in_sync = false;
};

// Reads one master's CLUSTER NODES reply into `migrations` (merged by slot): the markers of
// its own line, the other side named by the node ids of the reply. Exposed for tests.
void add_slot_migrations(std::string_view cluster_nodes, std::vector<SlotMigration>& migrations);

struct Snapshot {
    ServerSnapshot server;
    std::string namespace_name;
    std::vector<QueueSnapshot> queues;
    std::vector<queue::WorkerRecord> workers;
    // Non-empty: a key of the workers' registry holds the wrong type (what list_workers found).
    std::string registry_damage;
    long long server_now_ms = 0;

    // Anything damaged (a queue or the registry): workq-status exits 1 after showing the rest.
    bool damaged() const;
};

// `only` limits the queues (their order is kept); empty: every queue of the namespace.
Snapshot take_snapshot(redis::Connection& connection, const cli::ServerSettings& server,
                       const std::vector<std::string>& only);

}  // namespace workq::status
