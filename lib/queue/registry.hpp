// The worker registry: every running worker's id, name, host, pid, state, queues, slots,
// counters, start time and heartbeat (every 5 s). A worker is live while its heartbeat is
// younger than 15 s, lost after that; lost entries are forgotten after a day. A worker that
// exits leaves its final registration (state stopped or error, the reason, the time) among the
// exited: an hour after a clean stop, a day after an error.
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
// How long the final registration of an exited worker is kept: an error as long as a lost
// worker (someone must see why it died); a clean stop an hour (a --burst from cron every
// minute leaves 60, not 1,440).
inline constexpr std::chrono::milliseconds keep_stopped{3'600'000};
inline constexpr std::chrono::milliseconds keep_error = forget_after;

using Fields = std::vector<std::pair<std::string, std::string>>;

// Registers or refreshes a worker with `fields` (state, busy, processed, ...).
ScriptCall heartbeat_call(const NamespaceKeys& keys, std::string_view worker_id,
                          const Fields& fields);
// The worker's last word: its final `fields` (state, reason, counters) kept for `keep` among
// the exited workers, no longer among the registered ones.
ScriptCall exit_call(const NamespaceKeys& keys, std::string_view worker_id, const Fields& fields,
                     std::chrono::milliseconds keep);

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
    // An exited worker's final registration: when and why it ended.
    bool exited = false;
    long long stopped_at_ms = 0;
    std::string reason;
};

// Every registered worker (live and lost) and, after them, the final registrations of those
// that exited (`exited`), with liveness judged by the server's clock: two round trips whatever
// the number of jobs. A registry key of the wrong type (README, "Damaged data") is skipped and
// described in `*damage` when given, else thrown as QueueDamagedError.
std::vector<WorkerRecord> list_workers(redis::Connection& connection, const NamespaceKeys& keys,
                                       long long& server_now_ms, std::string* damage = nullptr);

}  // namespace workq::queue
