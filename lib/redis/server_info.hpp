// What a careful operator wants to know about the server before trusting it with jobs.
#pragma once

#include <string>
#include <vector>

#include "redis/connection.hpp"

namespace workq::redis {

// Reads INFO and returns warnings: an eviction policy other than noeviction (Redis may drop
// jobs under memory pressure), persistence off (a restart loses jobs). Empty when all is well
// or when INFO is not allowed (an ACL): the tools must work without it.
std::vector<std::string> server_warnings(Connection& connection);

using InfoFields = std::vector<std::pair<std::string, std::string>>;

// The same warnings from INFO fields read already (the default sections hold what they need).
std::vector<std::string> server_warnings(const InfoFields& fields);

// The INFO fields (name -> value) of the given section(s), e.g. "server", "memory".
InfoFields info_fields(Connection& connection, std::string_view section);

// A replica as its master sees it (INFO replication: slaveN:ip=...,port=...,state=...,...).
struct ReplicaInfo {
    std::string address;          // host:port
    std::string state;            // "online" once synchronized; "wait_bgsave", "send_bulk" before
    long long lag_s = -1;         // seconds since its last acknowledgement (-1: not said)
    long long behind_bytes = -1;  // the master's replication offset minus its own (-1: not said)
    bool in_sync = false;         // online, and acknowledged within replica_max_lag
};

// A replica whose last acknowledgement is older than this is not counted as in sync: Redis's
// own default for min-replicas-max-lag.
inline constexpr long long replica_max_lag_s = 10;

struct ReplicationInfo {
    std::string role;  // "master" or "slave"
    std::vector<ReplicaInfo> replicas;
};

// The replication section of INFO fields read already (the default sections hold it).
ReplicationInfo replication_info(const InfoFields& fields);

}  // namespace workq::redis
