// Leases: renewing the worker's own (every lease/3, at most every 2 s, for every job it holds)
// and taking back everyone's lapsed ones (the reaper, every ~4 s, in bounded batches). A renewal
// also tells the worker when a job it runs was cancelled by a user, or is held by another worker
// now (its own lease lapsed and someone claimed it): the worker stops that handler.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "handler_run.hpp"
#include "queue/keys.hpp"
#include "queue/transitions.hpp"
#include "redis/async_connection.hpp"

namespace workq::work {

class Leases {
  public:
    struct Held {
        std::size_t queue = 0;
        std::string id, token;
    };
    struct Hooks {
        std::function<std::shared_ptr<redis::AsyncConnection>()> connection;
        std::function<std::vector<Held>()> held;  // the jobs whose leases to renew now
        // A renewal's news of a held job: lost or cancel_requested (never renewed).
        std::function<void(const Held& job, queue::RenewStatus status)> news;
        std::function<Millis()> lease;  // the current --lease (SIGHUP may change it)
        std::function<Millis()> result_ttl;
        std::function<void(long long taken_back)> reaper_pass;  // after each periodic pass
        // A reap found the queue damaged (QueueDamagedError's damage; README, "Damaged data").
        std::function<void(std::size_t queue, const std::string& damage)> damaged;
        std::function<std::string()> label;  // the worker, in log lines
    };
    // How often the reaper looks: lapsed leases come back within lease + 5 s.
    static constexpr Millis reaper_interval{4000};
    // Jobs taken back per reap call: bounds how long one call holds the server. A pass calls
    // again at once while more remain, so that a thousand lapsed leases come back in one pass.
    static constexpr std::size_t reap_limit = 200;
    static constexpr Millis renew_at_most_every{2000};

    Leases(boost::asio::io_context& io, const std::vector<queue::QueueKeys>& queues,
           const std::vector<std::string>& names, Hooks hooks);

    // (Re)arms the renewal timer from now: at start and after a reload changed the lease.
    void schedule_renewal();
    // Arms the periodic reaper (each pass timed from the end of the last: passes never overlap).
    void schedule_reaper();
    // Takes back every lapsed lease of every queue, then calls `then` with how many came back.
    // Lost replies count as nothing taken back: `then` is always called (from the loop).
    void reap_all(std::function<void(long long taken_back)> then);
    // No more timers (the worker is finishing); a pass under way ends after its current call.
    void stop();

  private:
    struct ReapPass;
    void renew();
    void reap_queue(std::size_t queue, std::shared_ptr<ReapPass> pass, long long so_far);

    boost::asio::io_context& io_;
    const std::vector<queue::QueueKeys>& queues_;
    const std::vector<std::string>& names_;
    Hooks hooks_;
    bool stopped_ = false;
    boost::asio::steady_timer renew_timer_, reaper_timer_;
};

// Jitters a period by +-25 %, so that a fleet started at once does not act in step.
Millis jittered(Millis base);

}  // namespace workq::work
