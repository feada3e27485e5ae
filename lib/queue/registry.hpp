// The worker registry: every running worker's id, name, host, pid, state, queues, slots,
// counters, start time and heartbeat (every 5 s). A worker is live while its heartbeat is
// younger than 15 s, lost after that; lost entries are forgotten after a day.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "queue/keys.hpp"
#include "queue/transitions.hpp"
#include "redis/connection.hpp"

namespace workq::queue {

inline constexpr std::chrono::milliseconds heartbeat_interval{5'000};
inline constexpr std::chrono::milliseconds lost_after{15'000};
inline constexpr std::chrono::milliseconds forget_after{86'400'000};

using Fields = std::vector<std::pair<std::string, std::string>>;

// Registers or refreshes a worker with `fields` (state, busy, processed, ...); with `stop`,
// removes it (a clean exit).
ScriptCall heartbeat_call(const NamespaceKeys& keys, std::string_view worker_id,
                          const Fields& fields, bool stop = false);

struct HeartbeatResult {
    long long server_now_ms = 0;
    std::vector<std::string> lost_workers;
};
HeartbeatResult parse_heartbeat(const redis::Reply& reply);

struct WorkerRecord {
    std::string id, name, host, state;
    long long pid = 0;
    std::vector<std::string> queues;
    long long concurrency = 0, busy = 0, processed = 0, failed = 0;
    long long started_at_ms = 0, last_heartbeat_ms = 0;
    bool live = false;
};

// Every registered worker (live and lost), with liveness judged by the server's clock:
// two round trips whatever the number of jobs.
std::vector<WorkerRecord> list_workers(redis::Connection& connection, const NamespaceKeys& keys,
                                       long long& server_now_ms);

}  // namespace workq::queue
