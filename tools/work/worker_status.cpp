// What the worker tells others: its registration (heartbeat), the summary lines, and --http.
#include <unistd.h>

#include <boost/json.hpp>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

#include "queue/registry.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/faults.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/time.hpp"
#include "worker.hpp"
#include "worker_internal.hpp"

namespace workq::work {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace detail;

void Worker::heartbeat(bool exiting, std::function<void()> then) {
    if (!commands_ || !commands_->ready()) {
        if (then) then();
        return;
    }
    std::string queues;
    for (const auto& queue : settings_.queues)
        queues += (queues.empty() ? "" : ",") + queue;
    queue::Fields fields = {{"name", worker_label()},
                            {"host", host_},
                            {"pid", std::to_string(::getpid())},
                            {"state", std::string(to_string(state_))},
                            {"queues", queues},
                            {"concurrency", std::to_string(settings_.concurrency)},
                            {"busy", std::to_string(busy_slots())},
                            {"processed", std::to_string(jobs_finished_)},
                            {"failed", std::to_string(jobs_failed_)},
                            {"version", WORKQ_VERSION}};
    // Why it claims nothing while paused (the breaker, a failing health check, SIGTSTP); empty
    // otherwise, so that a resumed worker's hash holds no stale reason.
    if (!exiting) fields.emplace_back("reason", state_ == State::paused ? pause_reason_ : "");
    // The last word stays in the registry a while, with the reason: `workq-status` shows it,
    // and `--check --worker` says why the worker is gone instead of "not registered".
    auto call = exiting ? queue::exit_call(
                              namespace_keys_, worker_id_,
                              [&] {
                                  auto last = fields;
                                  last.emplace_back("reason", stop_reason_);
                                  return last;
                              }(),
                              state_ == State::error ? queue::keep_error : queue::keep_stopped)
                        : queue::heartbeat_call(namespace_keys_, worker_id_, fields);
    commands_->script(*call.script, call.keys, call.args,
                      [this, call, then = std::move(then)](std::optional<redis::Reply> reply) {
                          // A damaged registry leaves this worker unregistered, not stopped: said
                          // once.
                          std::string damage;
                          if (reply && reply->is_error()) {
                              try {
                                  queue::check_reply(call, *reply);
                              } catch (const std::exception& error) {
                                  damage = error.what();
                              }
                          }
                          if (reply && damage != registry_damage_) {
                              if (!damage.empty())
                                  log::error(fmt::format("cannot register the worker: {}", damage),
                                             {{"worker", worker_label()}});
                              else
                                  log::info("registered again", {{"worker", worker_label()}});
                              registry_damage_ = damage;
                          }
                          if (then) then();
                      });
}

void Worker::schedule_summary() {
    if (settings_.summary_interval.count() <= 0) return;
    summary_timer_.expires_after(settings_.summary_interval);
    summary_timer_.async_wait([this](auto error) {
        if (error) return;
        log_summary(false);
        schedule_summary();
    });
}

void Worker::log_summary(bool final) {
    auto ran = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started_at_);
    auto counts =
        fmt::format("processed {}, succeeded {}, failed {}, dead {}, released {}", jobs_finished_,
                    jobs_succeeded_, jobs_failed_, jobs_dead_, jobs_released_);
    if (final) {
        log::info(fmt::format("final summary: {} in {}; exit {}", counts,
                              format_duration_short(ran), exit_code_),
                  {{"worker", worker_label()}, {"state", std::string(to_string(state_))}});
        return;
    }
    auto recent = jobs_finished_ - finished_at_last_summary_;
    finished_at_last_summary_ = jobs_finished_;
    log::info(fmt::format("summary: {} ({} in the last {}); busy {}/{}; state {}", counts, recent,
                          format_duration(settings_.summary_interval), busy_slots(),
                          settings_.concurrency, to_string(state_)),
              {{"worker", worker_label()}});
}

void Worker::schedule_heartbeat(Millis after) {
    heartbeat_timer_.expires_after(after);
    heartbeat_timer_.async_wait([this](auto error) {
        if (error) return;
        heartbeat();
        children_.kill_inherited();
        schedule_heartbeat(queue::heartbeat_interval);
    });
}

// --- HTTP (--http) -------------------------------------------------------------------------------

void Worker::serve_http() {
    http::Router router;
    // Each handler runs on the worker's loop between two events: what it reads is never
    // half-updated, and it answers from memory (no Redis), so a scrape costs the loop little.
    router.handle("/livez", [this](const http::Request&) {
        if (state_ == State::error)
            return http::text_response(503, fmt::format("error: {}", stop_reason_));
        return http::text_response(200, "ok");
    });
    router.handle("/readyz", [this](const http::Request&) {
        if (state_ == State::running) return http::text_response(200, "running");
        auto why = state_ == State::paused                               ? pause_reason_
                   : state_ == State::draining || state_ == State::error ? stop_reason_
                                                                         : std::string();
        return http::text_response(503, why.empty()
                                            ? std::string(to_string(state_))
                                            : fmt::format("{}: {}", to_string(state_), why));
    });
    router.handle("/metrics", [this](const http::Request&) {
        Gauges gauges;
        gauges.state = to_string(state_);
        for (auto state : all_states)
            gauges.states.push_back(to_string(state));
        gauges.busy_slots = busy_slots();
        gauges.slots = static_cast<std::size_t>(settings_.concurrency);
        gauges.failures_in_a_row = failures_in_a_row_;
        gauges.breaker_trips = breaker_trips_;
        gauges.claims_held_back = claims_held_back_;
        gauges.uptime_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count();
        http::Response response;
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        response.body = metrics_.render(gauges);
        return response;
    });
    router.handle("/", [this](const http::Request&) {
        http::Response response;
        response.content_type = "application/json";
        response.body = worker_json();
        return response;
    });
    try {
        http_.emplace(io_, *settings_.http, std::move(router));
    } catch (const Error& error) {
        // A worker asked to answer probes that cannot would look dead to its supervisor.
        throw FatalError(fmt::format("--http: {}", error.what()));
    }
    log::info(fmt::format("serving http://{}/ (/livez, /readyz, /metrics)",
                          http::describe(http_->local_address())),
              {{"worker", worker_label()}});
}

std::string Worker::worker_json() const {
    // The registration (what the heartbeat stores) and the counters of this process.
    boost::json::array queues;
    for (const auto& queue : settings_.queues)
        queues.emplace_back(queue);
    boost::json::object worker{
        {"id", worker_id_},
        {"name", worker_label()},
        {"host", host_},
        {"pid", static_cast<long long>(::getpid())},
        {"state", to_string(state_)},
        {"reason", state_ == State::paused                               ? pause_reason_
                   : state_ == State::draining || state_ == State::error ? stop_reason_
                                                                         : std::string()},
        {"queues", std::move(queues)},
        {"concurrency", settings_.concurrency},
        {"busy", busy_slots()},
        {"processed", jobs_finished_},
        {"succeeded", jobs_succeeded_},
        {"failed", jobs_failed_},
        {"dead", jobs_dead_},
        {"released", jobs_released_},
        {"failures_in_a_row", failures_in_a_row_},
        {"started_at", format_rfc3339(started_at_ms_)},
        {"uptime_s",
         std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count()},
        {"version", WORKQ_VERSION}};
    return boost::json::serialize(worker) + "\n";
}

}  // namespace workq::work
