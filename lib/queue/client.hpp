// The blocking tools' use of the engine: run a transition over a redis::Connection, and the
// namespace-wide look-ups (which queues exist, where a job id lives).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "queue/keys.hpp"
#include "queue/transitions.hpp"
#include "redis/connection.hpp"

namespace workq::queue {

// Runs one transition and returns its reply; error replies throw (see check_reply).
redis::Reply run(redis::Connection& connection, const ScriptCall& call);

// Queues the call on the connection's pipeline (read with connection.read_script_replies()).
void append(redis::Connection& connection, const ScriptCall& call);

// The names of the queues ever written in the namespace, sorted. One command, no KEYS/SCAN.
std::vector<std::string> list_queues(redis::Connection& connection, const NamespaceKeys& keys);

// Finds job `id` in whichever queue of the namespace holds it: one pipelined round trip over
// all queues. nullopt when no queue has it.
std::optional<JobInfo> find_job(redis::Connection& connection, const NamespaceKeys& keys,
                                std::string_view id, bool details);

// As find_job, for many ids: one round trip per 100 ids (one entry per id, in order).
std::vector<std::optional<JobInfo>> find_jobs(redis::Connection& connection,
                                              const NamespaceKeys& keys,
                                              std::span<const std::string> ids, bool details);

// For caller-chosen ids: the queue (other than `except`) that already holds a job with each id,
// or an empty string. One pipelined round trip of EXISTS over the namespace's queues. Ids are
// unique within a namespace; the enqueue script checks its own queue atomically, this covers
// the others (a race between two callers choosing the same id for two queues remains).
std::vector<std::string> queues_holding(redis::Connection& connection, const NamespaceKeys& keys,
                                        std::span<const std::string> ids, std::string_view except);

}  // namespace workq::queue
