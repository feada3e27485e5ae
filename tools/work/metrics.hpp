// What `workq-work --http` serves at /metrics (CONTRACT.md section 12): this worker's own
// counters, kept on the worker's event loop and rendered in the Prometheus text format (0.0.4,
// promtool-clean). Nothing here talks to Redis: a scrape costs the worker a string.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace workq::work {

// How a job this worker ran ended, as the server recorded it (a label value of
// workq_worker_jobs_total).
enum class Outcome { succeeded, failed, dead, cancelled, released, lost };
inline constexpr std::array<std::string_view, 6> outcome_names = {"succeeded", "failed",   "dead",
                                                                  "cancelled", "released", "lost"};

// The worker's figures of the moment, as the gauges show them.
struct Gauges {
    std::string_view state;                // the current lifecycle state
    std::vector<std::string_view> states;  // every state, for workq_worker_state{state}
    std::size_t busy_slots = 0, slots = 0;
    long long failures_in_a_row = 0;
    int breaker_trips = 0;           // since the last success
    long long claims_held_back = 0;  // by a queue's fleet-wide limit (workq-queue limit)
    double uptime_seconds = 0;
};

class WorkerMetrics {
  public:
    explicit WorkerMetrics(std::vector<std::string> queues = {});

    void count(std::size_t queue_index, Outcome outcome);
    // A run of a handler that came to an outcome (succeeded or failed), however long it took.
    void observe(std::size_t queue_index, std::chrono::milliseconds duration);

    std::string render(const Gauges& gauges) const;

  private:
    // Seconds: a job of 5 ms to one of an hour (the default --timeout is 5m).
    static constexpr std::array<double, 14> bounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                      1,     2.5,  5,     10,   30,  60,   300};
    struct PerQueue {
        std::string name;
        std::array<long long, outcome_names.size()> outcomes{};
        std::array<long long, bounds.size()> buckets{};  // not cumulative: rendered so
        long long runs = 0;
        double seconds = 0;
    };
    std::vector<PerQueue> queues_;
};

}  // namespace workq::work
