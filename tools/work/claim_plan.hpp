// How a worker serving several queues claims and waits when one call cannot reach them all (a
// Redis Cluster whose served queues hash to different slots: CONTRACT.md section 10, issue 19).
// Pure: which queues go together in one claim call, which share one blocking wait, and how the
// replies of a chain of claims add up to what one claim over every queue would have said.
//
// A claim call, and a BLPOP, may name the keys of one slot only (Redis refuses a multi-key call
// across slots with CROSSSLOT, even when both slots live on one node). So on a cluster:
//   - claims form a chain of links, in the order the queues were given (strict priority): each
//     link is a run of consecutive queues that share a slot, claimed in one call; a link asks
//     for what the links before it left unclaimed;
//   - waits: one blocking connection per slot served, watching the wake-up lists of every served
//     queue in that slot (queues that share a hash slot share one BLPOP).
// Anywhere else (one server, Sentinel, or every served queue in one slot), one link and one
// wait cover every queue: the worker's calls are those of a single server, no extra round trip.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "queue/transitions.hpp"

namespace workq::work {

// Queue indices (into the served queues), grouped.
using QueueGroups = std::vector<std::vector<std::size_t>>;

// `slots`: each served queue's hash slot, in the order given. `split`: the calls must stay in
// one slot (a cluster). The claim chain's links: one link of every queue when not split or all
// share a slot; else runs of consecutive queues in the same slot, in order.
QueueGroups claim_links(std::span<const int> slots, bool split);

// The blocking waits: one of every queue when not split or all share a slot; else one per slot,
// in the order each slot is first met, its queues in the order given.
QueueGroups wait_groups(std::span<const int> slots, bool split);

// Adds the reply of one link (`part`, whose queue indices count within `link`) to `total`, the
// chain's result over `queue_count` queues: jobs appended with their indices mapped to the
// served queues, holds and damage placed at their queue, next_due and next_tick the earliest of
// the two (a hint absent from one is the other's). `total.holds` is sized to `queue_count`.
void merge_claim(queue::ClaimResult& total, queue::ClaimResult part,
                 std::span<const std::size_t> link, std::size_t queue_count);

}  // namespace workq::work
