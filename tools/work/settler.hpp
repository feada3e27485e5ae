// The settler: every outcome the worker owes the server (complete, fail, release) goes through
// here and is retried until the server has answered it.
//   - Successes of one queue go out as one `complete` call whenever none of that queue's is on
//     its way: the batch grows with the load, and no timer ever holds a settle back.
//   - An outcome whose reply was lost (the connection failed) waits in the outbox and is sent
//     again once reconnected: settles are idempotent (a repeat by the same token changes
//     nothing).
//   - An outcome the server refused for now (NOREPLICAS, OOM, READONLY, LOADING, MISCONF, BUSY,
//     ...; see transient_refusal) changed nothing (every script validates before its first
//     write, and those refusals come at the first write): it waits in the outbox and is sent
//     again after a growing delay (retry_first doubling to retry_cap). Dropping it would leave
//     the job `running` until its lease lapsed, and run it again.
//   - A success report the connection died under settle_losses_before_cut times, or that the
//     server answered with "ERR Protocol error" (an argument longer than its proto-max-bulk-len,
//     a command longer than its client-query-buffer-limit: Redis hangs up, often while the
//     command is still being written), is sent again with its results cut to what any Redis
//     takes (cut_budget; recorded as truncated): sent unchanged it would go again at every
//     reconnect, forever. A Protocol error is not a refusal for now: it is cut, not retried as is.
//   - Any other error reply is logged and the outcome dropped (its lease lapses and the job
//     runs again): retrying what the server will always refuse would hold the drain forever.
//   - Successes may ride with a claim instead (README, "One round"): the worker borrows the
//     ready successes of the claim's queues (lend), sends them in the claim's script call, and
//     gives them back with their statuses (repay). A claim whose connection failed gives them
//     back unsent (returned): they go out again after reconnecting, in `complete`, as a lost
//     `complete` does. An error reply to the claim is handled for them as one to `complete`
//     (refused). Successes the worker offers to a claim first (succeed(..., true)) go out in
//     `complete` at the end of the event loop's turn when no claim took them, unless a claim
//     is on its way (hooks.claim_coming): then they wait for the claim that follows it (sent when
//     its reply comes or a slot frees; the worker calls claims_ended() when none is on its way
//     any more). A claim carries the successes ready whatever else is on its way, so that a
//     busy worker settles in its claims and sends few `complete` calls of its own: each call
//     costs the server a fixed part (README, "One round").
// Nothing here knows Redis beyond `send`: the unit tests drive it with a fake.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "queue/transitions.hpp"
#include "redis/reply.hpp"

namespace workq::work {

// True for an error reply that says the server cannot take a write *now* and will later
// (NOREPLICAS, OOM, READONLY, LOADING, MISCONF, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN; and
// on a cluster ASK and MOVED, the redirects a call still meets after the router's cap, 16: a
// slot in migration answers ASK on its source and TRYAGAIN on its target, turn about),
// whether the server sent it for the call itself or a script's redis.call passed it on
// ("ERR Error running script ...: -NOREPLICAS ..." on Redis 6.2).
bool transient_refusal(std::string_view error);

class Settler {
  public:
    using Sent = std::function<void(std::optional<redis::Reply>)>;
    struct Hooks {
        std::function<bool()> connected;  // the command connection can take a call now
        // Sends one call; the callback gets its reply, or nullopt when the connection failed.
        std::function<void(const queue::ScriptCall&, Sent)> send;
        // The `complete` call for a batch of a queue's successes.
        std::function<queue::ScriptCall(std::size_t queue,
                                        const std::vector<queue::Completion>& jobs)>
            complete_call;
        std::function<void(const std::string& message)> fatal;  // a newer workq's data
        std::function<void()> answered;      // after any outcome the server answered
        std::function<std::string()> label;  // the worker, in log lines
        // A claim is on its way that will be followed by one that may carry `queue`'s
        // successes (unset: never). While true, offered successes wait for that claim.
        std::function<bool(std::size_t queue)> claim_coming = {};
    };
    // A job whose outcome waits here: its lease is still the worker's to renew.
    struct Hold {
        std::size_t queue = 0;
        std::string id, token;
    };
    struct Outgoing {
        queue::ScriptCall call;
        std::function<void(const redis::Reply&)> on_reply;  // a reply that is not an error
        std::function<void()> answered = {};  // once the server answered (even with an error)
        std::vector<Hold> holds = {};         // the jobs it settles
        int lost = 0;                         // times the connection died while it was on its way
    };
    struct Success {
        std::string id, token, result;
        std::size_t dropped = 0;
        std::function<void(queue::Settle)> settled;
    };
    // Bounded, so that one call never holds the server long: at most this many jobs per
    // `complete` call, and no more once their results add up to a megabyte.
    static constexpr std::size_t batch_most_jobs = 64;
    static constexpr std::size_t batch_most_bytes = 1 << 20;
    static constexpr std::chrono::milliseconds retry_first{100}, retry_cap{5000};
    // Neither proto-max-bulk-len nor client-query-buffer-limit can be set below 1 MiB; the
    // room is for the command's other bytes and its RESP framing.
    static constexpr std::size_t smallest_request_limit = std::size_t(1) << 20;
    static constexpr std::size_t request_room = 64 << 10;
    static constexpr std::size_t cut_budget = smallest_request_limit - request_room;
    static constexpr int settle_losses_before_cut = 3;

    Settler(boost::asio::io_context& io, std::size_t queues, Hooks hooks);

    // Successes lent to a claim call, with the queue of each.
    struct Loan {
        std::vector<std::size_t> queues;
        std::vector<Success> successes;
        unsigned generation = 0;
        bool empty() const { return successes.empty(); }
    };
    // A claim carries at most this many bytes of results; bigger ones go in `complete` (its
    // cut logic is there).
    static constexpr std::size_t lend_most_bytes = 64 << 10;

    // Sends the outcome now, or keeps it until the connection is back (or the backoff ends).
    void settle(Outgoing outgoing);
    // A success of `queue`: sent with the queue's next batch. `offer_to_claim`: not sent before
    // the end of the event loop's turn, so that a claim sent meanwhile may carry it (lend).
    void succeed(std::size_t queue, Success success, bool offer_to_claim = false);
    // Lends the successes waiting for queues [first, first + count), in order, up to
    // batch_most_jobs and lend_most_bytes (whatever else is on its way: each success is judged
    // on its own). Until the loan comes back, those queues count as having a settle on its way
    // (no `complete` of theirs goes meanwhile: the batch grows).
    Loan lend(std::size_t first, std::size_t count);
    // No claim is on its way any more: successes that waited for one go at the end of this
    // turn (with a claim sent meanwhile, else in `complete`).
    void claims_ended() { send_soon(); }
    // The claim's reply: one status per success, in the loan's order.
    void repay(Loan loan, const std::vector<queue::Settle>& statuses);
    // The claim's connection failed: sent again in `complete` once reconnected.
    void returned(Loan loan);
    // The claim was answered with an error (`error`, the reply's text): as for `complete`.
    void refused(Loan loan, const std::string& error);
    // Connected again: sends what the outbox holds.
    void flush();
    // Outcomes not yet answered by the server: in flight, in the outbox, or waiting in a batch.
    bool pending() const;
    // The jobs whose outcomes wait in the outbox or in a batch. Their leases are renewed: an
    // outcome refused for longer than --lease (NOREPLICAS, OOM...) would otherwise see its job
    // reaped and run again although it ran. (One on its way is not listed: it is answered or
    // back in the outbox well within a renewal period.)
    std::vector<Hold> held() const;
    std::size_t in_flight() const { return in_flight_; }
    std::size_t outbox_size() const { return outbox_.size(); }
    // Gives up on everything (the worker's hard stop): leases lapse and the jobs run again.
    void drop_all();

  private:
    struct Batch {
        std::vector<Success> pending;
        int in_flight = 0;  // settles of this queue on their way: `complete` calls and loans
    };
    // Offered successes of `queue` that a claim on its way will be followed by one to carry.
    bool wait_for_claim(std::size_t queue) const;
    void send_successes(std::size_t queue);
    // Sends every queue's waiting successes at the end of the event loop's turn.
    void send_soon();
    // The `complete` call for successes of `queue`, as Outgoing.
    Outgoing complete_outgoing(std::size_t queue, std::vector<Success> successes);
    // An outcome's reply (nullopt: the connection failed), once it is no longer in flight.
    void on_answer(const std::shared_ptr<Outgoing>& sent, std::optional<redis::Reply> reply);
    // Each queue's successes of a loan, as `complete` calls.
    std::vector<Outgoing> as_complete(Loan loan);
    // The loan's queues have one settle fewer on its way.
    void loan_answered(const Loan& loan);
    void refused_for_now(Outgoing outgoing, const std::string& why);
    // Cuts the results of a success report the server refuses for its size (see above). False
    // when there was nothing to cut: it goes again unchanged, as after any lost connection.
    bool cut_refused(Outgoing& outgoing, std::string_view why);

    boost::asio::io_context& io_;
    Hooks hooks_;
    std::deque<Outgoing> outbox_;
    std::vector<Batch> batches_;  // per queue
    std::size_t in_flight_ = 0;
    int refusals_in_a_row_ = 0;
    bool backing_off_ = false;
    bool send_posted_ = false;
    unsigned generation_ = 0;  // bumped by drop_all: a loan of before is forgotten
    boost::asio::steady_timer retry_timer_;
};

}  // namespace workq::work
