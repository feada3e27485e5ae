// The worker's part in workq-schedule (CONTRACT.md section 11): fires the due ticks of the
// schedules of the worker's queues. Every worker serving a queue does so; each tick is one
// atomic step on the server (lib/lua/schedule_fire.lua) that makes the tick's job and advances
// the schedule, refused to every worker but the first, so a fleet makes one job per tick.
//
// When it looks: a round (lib/lua/schedule_due.lua, one call per queue) reads what is due and
// records the worker as watching the queue. Rounds run at start and after a reconnect, on a
// timer set for the earliest tick it knows of, when a claim reply says a tick is due or nearer
// (an idle worker learns of a new schedule at once: `add` wakes it), and with each reaper pass
// for the queues that have schedules (so that a worker busy for hours still fires, and keeps
// its watch). Queues without schedules cost nothing beyond the first round.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "queue/schedules.hpp"
#include "redis/async_connection.hpp"

namespace workq::work {

class ScheduleFirer {
  public:
    using ConnectionGetter = std::function<std::shared_ptr<redis::AsyncConnection>()>;

    // `connection` gives the worker's command connection of the moment (it is replaced on
    // reconnect); `label` names the worker in logs.
    ScheduleFirer(boost::asio::io_context& io, queue::NamespaceKeys namespace_keys,
                  std::vector<queue::QueueKeys> queues, std::string worker_id,
                  ConnectionGetter connection, std::function<std::string()> label);

    // A round on every queue: at start, and after a reconnect (the worker could fire nothing
    // while cut off: the ticks of that time were missed unless another worker watched).
    void start();
    // From a claim reply: the time until the earliest tick of the worker's queues (0: due).
    void on_claim_hint(std::optional<std::chrono::milliseconds> until_tick);
    // With each reaper pass: a round on every queue that has schedules.
    void on_reaper_pass();
    // The command connection was lost: nothing is fired until start() again.
    void on_connection_lost();
    // The worker stops: no more rounds; tells each queue this worker no longer watches it.
    void stop();

  private:
    struct QueueState {
        bool has_schedules = false;
        bool round_in_flight = false;
        bool round_again = false;              // asked for while a round was on its way
        std::optional<long long> watch_start;  // server ms of this worker's first round
        std::set<std::string> reported;        // corrupt schedules already logged (name.gen)
        // Why the last round failed (a damaged queue, README "Damaged data"): logged once, and
        // once when a round reads the schedules again.
        std::string round_error;
    };

    void round(std::size_t queue_index);
    void rounds(bool only_with_schedules);
    void on_due(std::size_t queue_index, const queue::DueRead& read);
    // Where a tick's job may be made: here, fenced by this queue's reservation of its id, or
    // not (another queue holds the id).
    struct Placement {
        std::optional<long long> fence_ms;
        std::string elsewhere;
    };
    // Reserves the ids of the plan's ticks, looks for them in the other queues, then sends the
    // steps; `on_result` sees each reply, `done` runs after the last (or on a failure).
    void fire(std::size_t queue_index, const queue::DueSchedule& schedule,
              const queue::FirePlan& plan, std::function<void(const queue::FireResult&)> on_result,
              std::function<void()> done);
    void look_elsewhere(std::size_t queue_index, const queue::DueSchedule& schedule,
                        const queue::FirePlan& plan, std::shared_ptr<std::vector<std::string>> ids,
                        std::shared_ptr<std::map<std::string, Placement>> placements,
                        std::function<void(const queue::FireResult&)> on_result,
                        std::function<void()> done);
    void send_steps(std::size_t queue_index, const queue::DueSchedule& schedule,
                    const queue::FirePlan& plan, const std::map<std::string, Placement>& placements,
                    std::function<void(const queue::FireResult&)> on_result,
                    std::function<void()> done);
    // Sets the timer for a tick EARLIEST_MS (server clock) read when the server said NOW_MS.
    void arm(long long earliest_ms, long long now_ms);
    void on_timer();
    bool active() const;

    boost::asio::io_context& io_;
    queue::NamespaceKeys namespace_keys_;
    std::vector<queue::QueueKeys> queues_;
    std::string worker_id_;
    ConnectionGetter connection_;
    std::function<std::string()> label_;
    std::vector<QueueState> state_;
    boost::asio::steady_timer timer_;
    std::optional<std::chrono::steady_clock::time_point> armed_for_;
    bool started_ = false, stopped_ = false;
    bool hinted_ = false;  // the timer was set by a claim's hint: its round reads every queue
};

}  // namespace workq::work
