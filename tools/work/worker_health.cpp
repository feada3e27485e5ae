// Hooks (--on-start, --on-stop, --health-cmd) and the breaker (--pause-after-failures).
#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

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

bool Worker::note_health(bool ok, const HandlerOutcome& outcome) {
    if (!ok && !paused_by_health_) {
        log::warn(fmt::format("health check failed ({})", outcome.describe()),
                  {{"worker", worker_label()}});
        paused_by_health_ = true;
        if (settings_.burst) {
            exit_code_ = 1;
            begin_drain("--burst: health check failed");
            return false;
        }
    } else if (ok && paused_by_health_) {
        log::info("health check passed", {{"worker", worker_label()}});
        paused_by_health_ = false;
    }
    return true;
}

void Worker::note_run_for_breaker(bool failed) {
    if (!failed) {
        // A success closes the episode: the next trip starts again from --failure-cooldown.
        failures_in_a_row_ = 0;
        breaker_trips_ = 0;
        return;
    }
    ++failures_in_a_row_;
    // Jobs that were running when it tripped finish while it is paused: their failures add to
    // nothing (the count starts afresh when it resumes).
    if (settings_.pause_after_failures <= 0 || paused_by_breaker_ ||
        failures_in_a_row_ < settings_.pause_after_failures)
        return;
    if (state_ != State::running && state_ != State::paused) return;  // draining, stopping
    // base * 2^trips, at most 10 min (or the base itself, when the user asked for more).
    auto ceiling = std::max(settings_.failure_cooldown, max_failure_cooldown);
    auto cooldown = settings_.failure_cooldown;
    for (int i = 0; i < breaker_trips_ && cooldown < ceiling; ++i)
        cooldown *= 2;
    cooldown = std::min(cooldown, ceiling);
    ++breaker_trips_;
    paused_by_breaker_ = true;
    breaker_reason_ = fmt::format(
        "{} jobs failed in a row (--pause-after-failures {}): claiming nothing for {}{}{}",
        failures_in_a_row_, settings_.pause_after_failures, format_duration(cooldown),
        breaker_trips_ > 1 ? fmt::format(" (trip {} before a success)", breaker_trips_) : "",
        settings_.health_cmd.empty() ? "" : ", then until --health-cmd passes");
    log::warn(fmt::format("breaker tripped: {}", breaker_reason_), {{"worker", worker_label()}});
    refresh_pause_state();
    breaker_timer_.expires_after(cooldown);
    breaker_timer_.async_wait([this](auto error) {
        if (!error) end_breaker_cooldown();
    });
}

void Worker::end_breaker_cooldown() {
    if (!paused_by_breaker_ || finishing_ || state_ == State::draining || state_ == State::stopped)
        return;
    auto resume = [this] {
        paused_by_breaker_ = false;
        failures_in_a_row_ = 0;
        refresh_pause_state();
    };
    if (settings_.health_cmd.empty()) {
        log::info("breaker: cooldown over; resuming", {{"worker", worker_label()}});
        resume();
        return;
    }
    run_hook(settings_.health_cmd, "health", std::min(settings_.health_interval, hook_timeout),
             [this, resume](bool ok, const HandlerOutcome& outcome) {
                 if (!paused_by_breaker_ || finishing_ || state_ == State::draining ||
                     state_ == State::stopped)
                     return;
                 if (ok) {
                     log::info("breaker: cooldown over and the health check passed; resuming",
                               {{"worker", worker_label()}});
                     resume();
                     return;
                 }
                 // The dependency is still down: stay paused and look again, as often as the
                 // periodic check would, and no later than another cooldown. The cooldown does
                 // not double for this: it doubles only when jobs fail again.
                 auto again = std::min(settings_.health_interval, settings_.failure_cooldown);
                 breaker_reason_ = fmt::format(
                     "the breaker tripped and the health check fails ({}): claiming nothing until "
                     "it passes",
                     outcome.describe());
                 log::warn(fmt::format("breaker: cooldown over but the health check fails ({}); "
                                       "staying paused, checking again in {}",
                                       outcome.describe(), format_duration(again)),
                           {{"worker", worker_label()}});
                 if (settings_.burst) {
                     exit_code_ = 1;
                     begin_drain("--burst: health check failed");
                     return;
                 }
                 refresh_pause_state();
                 breaker_timer_.expires_after(again);
                 breaker_timer_.async_wait([this](auto error) {
                     if (!error) end_breaker_cooldown();
                 });
             });
}

void Worker::schedule_health_check(Millis after) {
    health_timer_.expires_after(after);
    health_timer_.async_wait([this](auto error) {
        if (error || settings_.health_cmd.empty()) return;
        run_hook(settings_.health_cmd, "health", std::min(settings_.health_interval, hook_timeout),
                 [this](bool ok, const HandlerOutcome& outcome) {
                     if (state_ == State::draining || state_ == State::stopped || finishing_)
                         return;
                     if (!note_health(ok, outcome)) return;
                     refresh_pause_state();
                     schedule_health_check(settings_.health_interval);
                 });
    });
}

void Worker::run_hook(const std::string& command, std::string_view tag, Millis timeout,
                      std::function<void(bool ok, const HandlerOutcome&)> then) {
    HandlerRun::Params params;
    params.executable = "/bin/sh";
    params.argv = {"/bin/sh", "-c", command};
    params.env = base_env_;
    params.env.push_back("WORKQ_WORKER_ID=" + worker_id_);
    params.payload_on_stdin = false;
    params.timeout = timeout;
    params.kill_grace = settings_.kill_grace;
    params.max_result = 64 * 1024;
    params.tag = std::string(tag);
    params.guard_fd = children_.guard_fd();
    params.cgroup_fd = children_.cgroup_fd();
    try {
        auto run = HandlerRun::start(
            io_, std::move(params),
            [then = std::move(then), tag = std::string(tag)](HandlerOutcome outcome) {
                // A hook's stdout is not data of ours: relay it like its stderr.
                std::string_view text = outcome.result;
                while (!text.empty()) {
                    auto newline = text.find('\n');
                    log::relay(tag, text.substr(0, newline));
                    text = newline == std::string_view::npos ? std::string_view{}
                                                             : text.substr(newline + 1);
                }
                then(outcome.exited_zero(), outcome);
            });
        children_.watch(run->pid(), [run](int status) { run->on_exit(status); });
    } catch (const std::exception& error) {
        HandlerOutcome outcome;
        outcome.exec_error = EAGAIN;
        log::error(fmt::format("cannot run the {} hook: {}", tag, error.what()));
        asio::post(io_, [then = std::move(then), outcome] { then(false, outcome); });
    }
}

}  // namespace workq::work
