// Claim ahead (workq-work --claim-ahead N): the jobs a worker holds leased beyond its busy
// slots, so that a slot that frees gets its next job without waiting for Redis. Pure
// bookkeeping, no I/O: what is held, how much a claim asks for, which job starts next, what to
// give back on a drain. The worker (worker_claim.cpp, worker_jobs.cpp) sends the calls.
//   - A claim asks for the slots it fills now plus the places ahead still open: the limit less
//     the jobs held and those claims on their way may bring. The server starts the first
//     (max - ahead) jobs it gives and claims the rest ahead (lib/lua/claim.lua).
//   - A job claimed ahead is held until a slot frees: then the oldest of the first queue in
//     priority order starts (strict priority between queues), and the worker sends its start
//     notice (start.lua: the attempt is counted then).
//   - Draining, paused, or a lower limit: the held jobs are given back (release, uncounted).
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

#include "queue/transitions.hpp"

namespace workq::work {

class ClaimAhead {
  public:
    explicit ClaimAhead(std::size_t limit = 0) : limit_(limit) {}

    // What one claim asks for: `max` jobs, the last `ahead` of them claimed ahead.
    struct Ask {
        std::size_t max = 0, ahead = 0;
        bool operator==(const Ask&) const = default;
    };
    // `starting`: slots the claim would fill now (free, not claimed for by a claim on its way).
    // `budget`: jobs the worker may still start in all (--max-jobs less those started and
    // those claimed for); nullopt: no limit. Places ahead are cut first when the budget is short.
    Ask ask(std::size_t starting, std::optional<std::size_t> budget = std::nullopt) const;
    // A claim asking for `ask` went out / is over (whatever it brought); the connection was
    // lost (every claim on its way with it).
    void sent(const Ask& ask) { asked_ahead_ += ask.ahead; }
    void answered(const Ask& ask) {
        asked_ahead_ -= ask.ahead <= asked_ahead_ ? ask.ahead : asked_ahead_;
    }
    void claims_lost() { asked_ahead_ = 0; }

    // A job the server claimed ahead, kept until a slot frees.
    void hold(queue::ClaimedJob job);
    // The job to start in a slot that freed: the first of the lowest queue index (the queues'
    // priority order), oldest first within it; nullopt when none is held.
    std::optional<queue::ClaimedJob> next();
    // The held job with this id and token, taken out (a renewal said it is lost, or cancelled).
    std::optional<queue::ClaimedJob> take(std::string_view id, std::string_view token);
    // Every held job, taken out: to give back (drain, pause, SIGTSTP).
    std::vector<queue::ClaimedJob> give_back_all();
    // The held jobs past a new, lower limit (a reload lowered the concurrency): the newest go.
    std::vector<queue::ClaimedJob> set_limit(std::size_t limit);

    std::size_t limit() const { return limit_; }
    std::size_t held() const { return held_.size(); }
    std::size_t asked_ahead() const { return asked_ahead_; }
    const std::deque<queue::ClaimedJob>& jobs() const { return held_; }

  private:
    std::size_t limit_ = 0;
    std::size_t asked_ahead_ = 0;  // places ahead that claims on their way may fill
    std::deque<queue::ClaimedJob> held_;
};

}  // namespace workq::work
