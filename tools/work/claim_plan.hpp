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

#include <chrono>
#include <cstddef>
#include <optional>
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

// The links of a chain of several (a cluster) that the server refused lately (a slot that moves
// answers TRYAGAIN until the move ends, a master turned replica READONLY...). A refused link is
// left out of the chains, so that the queues after it are claimed meanwhile; once its pause is
// over it is tried again on its own (a retry: one job's claim, which does not hold up the other
// queues while it waits for its answer). The pause is `first` after the first refusal, doubled
// at each refusal in a row up to `cap`; the link's first answer ends it. Times are passed in.
class LinkSkips {
  public:
    using Clock = std::chrono::steady_clock;
    LinkSkips() = default;
    LinkSkips(std::size_t links, std::chrono::milliseconds first, std::chrono::milliseconds cap);
    // The first link from `from` on that a chain asks: not refused lately. links() when none.
    std::size_t next(std::size_t from) const;
    // The first refused link whose pause is over at `now` and whose retry is not on its way.
    std::optional<std::size_t> due(Clock::time_point now) const;
    // The link's retry goes out (left out of due() until it is answered, refused or abandoned).
    void retrying(std::size_t link);
    // The link was refused at `now`: its pause (the last one doubled, up to the cap).
    std::chrono::milliseconds refused(std::size_t link, Clock::time_point now);
    // The link answered: no pause any more. True when it had been refused.
    bool answered(std::size_t link);
    // The link's call came to nothing (a lost connection): neither answered nor refused.
    void abandoned(std::size_t link);
    // Refused lately (paused, due or being retried): chains leave it out.
    bool skipped(std::size_t link) const;
    // When the first pause not retried yet ends; none when no link waits for a retry.
    std::optional<Clock::time_point> next_retry() const;
    std::size_t links() const { return links_.size(); }
    bool any_skipped() const;  // some link was refused lately

  private:
    struct Link {
        std::chrono::milliseconds pause{0};      // the last one; zero: not refused lately
        std::optional<Clock::time_point> until;  // refused: retried from then on
        bool retrying = false;                   // its retry is on its way
    };
    std::vector<Link> links_;
    std::chrono::milliseconds first_{0}, cap_{0};
};

}  // namespace workq::work
