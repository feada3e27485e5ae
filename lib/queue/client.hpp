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
// the others. Alone it leaves a race between two callers choosing one id for two queues:
// place_ids closes it.
std::vector<std::string> queues_holding(redis::Connection& connection, const NamespaceKeys& keys,
                                        std::span<const std::string> ids, std::string_view except);

// Where each caller-chosen id may be made (README, "Ids across queues"): reserved for `queue`
// in the namespace (fence_ms set: make the job there with EnqueueOptions::id_fence_ms), or the
// other queue that holds a job with that id. A reservation another caller holds for another
// queue whose job is not there yet (it is being made) is waited for, up to about twice the
// reservation's life; past that, Error. Round trips: a reservation, a look in every other queue.
struct IdPlace {
    std::string queue;
    std::optional<long long> fence_ms;
};
std::vector<IdPlace> place_ids(redis::Connection& connection, const NamespaceKeys& keys,
                               std::span<const std::string> ids, std::string_view queue);

// Makes `job`, whose id is the caller's, in `keys`' queue, unless a job with that id exists in
// any queue of the namespace (then nothing is made): reserve, look, make, as place_ids says,
// again when the reservation lapsed before the enqueue ran. Registers the queue in the
// namespace first. Returns the outcome and the queue that holds the job. Throws RedisError,
// DataVersionError, or Error when the reservation could not be used.
struct PlacedJob {
    EnqueueStatus status = EnqueueStatus::created;  // created or existing
    std::string queue;
    bool created_queue = false;  // the namespace had not seen the queue before this call
};
PlacedJob enqueue_with_id(redis::Connection& connection, const NamespaceKeys& namespace_keys,
                          const QueueKeys& keys, EnqueueOptions options, const NewJob& job);

}  // namespace workq::queue
