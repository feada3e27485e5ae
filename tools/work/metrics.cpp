#include "metrics.hpp"

#include <fmt/format.h>

#include "util/text.hpp"

namespace workq::work {

WorkerMetrics::WorkerMetrics(std::vector<std::string> queues) {
    for (auto& queue : queues)
        queues_.push_back({std::move(queue), {}, {}, 0, 0});
}

void WorkerMetrics::count(std::size_t queue_index, Outcome outcome) {
    if (queue_index < queues_.size())
        ++queues_[queue_index].outcomes[static_cast<std::size_t>(outcome)];
}

void WorkerMetrics::observe(std::size_t queue_index, std::chrono::milliseconds duration) {
    if (queue_index >= queues_.size()) return;
    auto& queue = queues_[queue_index];
    double seconds = static_cast<double>(duration.count()) / 1000.0;
    ++queue.runs;
    queue.seconds += seconds;
    for (std::size_t i = 0; i < bounds.size(); ++i)
        if (seconds <= bounds[i]) {
            ++queue.buckets[i];
            break;
        }
}

std::string WorkerMetrics::render(const Gauges& gauges) const {
    std::string out;
    auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    };
    // Every series exists from the start (0 until something happens): a rate() over a series
    // that appears with its first job misses that job.
    family("workq_worker_jobs_total", "counter",
           "Jobs this worker ran, by queue and outcome as the server recorded it (failed: a "
           "retry is scheduled; lost: another worker held the job by then).");
    for (const auto& queue : queues_)
        for (std::size_t i = 0; i < outcome_names.size(); ++i)
            out += fmt::format("workq_worker_jobs_total{{queue=\"{}\",outcome=\"{}\"}} {}\n",
                               prometheus_label(queue.name), outcome_names[i], queue.outcomes[i]);
    family("workq_worker_job_duration_seconds", "histogram",
           "How long the handler ran, per job that succeeded or failed, by queue.");
    for (const auto& queue : queues_) {
        long long cumulative = 0;
        for (std::size_t i = 0; i < bounds.size(); ++i) {
            cumulative += queue.buckets[i];
            out += fmt::format(
                "workq_worker_job_duration_seconds_bucket{{queue=\"{}\",le=\"{}\"}} {}\n",
                prometheus_label(queue.name), bounds[i], cumulative);
        }
        out +=
            fmt::format("workq_worker_job_duration_seconds_bucket{{queue=\"{}\",le=\"+Inf\"}} {}\n",
                        prometheus_label(queue.name), queue.runs);
        out += fmt::format("workq_worker_job_duration_seconds_sum{{queue=\"{}\"}} {:.3f}\n",
                           prometheus_label(queue.name), queue.seconds);
        out += fmt::format("workq_worker_job_duration_seconds_count{{queue=\"{}\"}} {}\n",
                           prometheus_label(queue.name), queue.runs);
    }
    family("workq_worker_busy_slots", "gauge", "Slots running a job.");
    out += fmt::format("workq_worker_busy_slots {}\n", gauges.busy_slots);
    family("workq_worker_slots", "gauge", "Slots (--concurrency).");
    out += fmt::format("workq_worker_slots {}\n", gauges.slots);
    family("workq_worker_state", "gauge", "1 for the worker's lifecycle state, 0 for the others.");
    for (auto state : gauges.states)
        out += fmt::format("workq_worker_state{{state=\"{}\"}} {}\n", state,
                           state == gauges.state ? 1 : 0);
    family("workq_worker_failures_in_a_row", "gauge",
           "Jobs that failed in a row, as the breaker counts them (it trips at "
           "--pause-after-failures).");
    out += fmt::format("workq_worker_failures_in_a_row {}\n", gauges.failures_in_a_row);
    family("workq_worker_breaker_trips", "gauge",
           "Times the breaker tripped since the last success (each doubles the cooldown).");
    out += fmt::format("workq_worker_breaker_trips {}\n", gauges.breaker_trips);
    family("workq_worker_claims_held_back_total", "counter",
           "Claims a queue's fleet-wide rate or concurrency limit held back (workq-queue limit).");
    out += fmt::format("workq_worker_claims_held_back_total {}\n", gauges.claims_held_back);
    family("workq_worker_uptime_seconds", "gauge", "Seconds since the worker started.");
    out += fmt::format("workq_worker_uptime_seconds {:.3f}\n", gauges.uptime_seconds);
    return out;
}

}  // namespace workq::work
