// The worker's signals (events on its loop, never work in a handler) and SIGHUP's reload.
#include <signal.h>

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

void Worker::watch_signals() {
    ::signal(SIGPIPE, SIG_IGN);  // a handler that closes its stdin early must not kill us
    for (int signal_number : watched_signals)
        signals_.add(signal_number);
    signals_.async_wait([this](auto error, int signal_number) {
        if (error) return;
        on_signal(signal_number);
        watch_signals();
    });
}

void Worker::on_signal(int signal_number) {
    switch (signal_number) {
        case SIGCHLD:
            children_.reap();
            break;
        case SIGTERM:
        case SIGINT: {
            bool second = state_ == State::draining;
            log::info(fmt::format("{}: {}", signal_number == SIGTERM ? "SIGTERM" : "SIGINT",
                                  second ? "skipping the wait" : "draining"),
                      {{"worker", worker_label()}});
            if (state_ == State::initializing || state_ == State::starting) {
                if (!started_running_ && !commands_->ready()) {
                    io_.stop();
                    return;
                }
            }
            begin_drain(signal_number == SIGTERM ? "SIGTERM" : "SIGINT", second);
            break;
        }
        case SIGHUP:
            reload_settings("SIGHUP");
            break;
        case SIGUSR1:
            // As some of the systems we replace do: a reload (a supervisor may only send USR1).
            reload_settings("SIGUSR1");
            break;
        case SIGUSR2:
            log::warn("SIGUSR2: means nothing to workq-work; ignored (SIGHUP or SIGUSR1 reloads)",
                      {{"worker", worker_label()}});
            break;
        case SIGTSTP:
            paused_by_signal_ = true;
            refresh_pause_state();
            break;
        case SIGCONT:
            if (paused_by_signal_) {
                paused_by_signal_ = false;
                refresh_pause_state();
            }
            break;
        default:
            break;
    }
}

void Worker::reload_settings(std::string_view signal_name) {
    try {
        auto fresh = parse_settings(argc_, argv_);
        check_descriptor_budget(fresh.concurrency);  // refused: the old settings stay
        if (fresh.queues != settings_.queues || fresh.command != settings_.command)
            log::warn(fmt::format("{}: queues and COMMAND never change while running; keeping them",
                                  signal_name),
                      {{"worker", worker_label()}});
        auto before = reloadable_values(settings_);
        bool health_changed = fresh.health_cmd != settings_.health_cmd ||
                              fresh.health_interval != settings_.health_interval;
        // Everything a reload may change, at once. A new cooldown applies from the next trip;
        // the breaker turned off ends its pause (below).
        static_cast<Reloadable&>(settings_) = std::move(static_cast<Reloadable&>(fresh));
        // --claim-ahead lowered: the held jobs past it go back, uncounted.
        for (auto& claimed :
             claim_ahead_.set_limit(static_cast<std::size_t>(settings_.claim_ahead))) {
            Job job;
            job.queue_index = claimed.queue_index;
            job.claimed = std::move(claimed);
            release(job);
        }
        if (static_cast<std::size_t>(settings_.concurrency) > slots_.size()) {
            auto old_size = slots_.size();
            slots_.resize(static_cast<std::size_t>(settings_.concurrency));
            for (std::size_t i = old_size; i < slots_.size(); ++i)
                slots_[i].index = i;
        }
        // Say what changed, and what the file could not change: a setting the command line or
        // the environment gave stays as it is, which a reload that "changed nothing" hides.
        auto after = reloadable_values(settings_);
        std::string changes, pinned;
        for (std::size_t i = 0; i < after.size(); ++i) {
            const auto& [key, value] = after[i];
            if (before[i].second != value)
                changes += fmt::format("{}{} {} -> {}", changes.empty() ? "" : ", ", key,
                                       before[i].second, value);
            if (auto source = fresh.pinned.find(key); source != fresh.pinned.end())
                pinned += fmt::format("{}{} {} (by {})", pinned.empty() ? "" : ", ", key, value,
                                      source->second);
        }
        log::info(fmt::format("{}: reloaded the config: {}{}", signal_name,
                              changes.empty() ? "nothing changed" : changes,
                              pinned.empty() ? ""
                                             : "; kept, as the command line or environment "
                                               "sets them: " +
                                                   pinned),
                  {{"worker", worker_label()}});
        for (const auto& warning : settings_warnings(settings_))
            log::warn(warning, {{"worker", worker_label()}});
        if (health_changed && started_running_ && state_ != State::draining) {
            health_timer_.cancel();
            if (settings_.health_cmd.empty()) {
                paused_by_health_ = false;
                refresh_pause_state();
            } else {
                schedule_health_check(Millis(0));
            }
        }
        if (settings_.pause_after_failures <= 0 && paused_by_breaker_) {
            breaker_timer_.cancel();
            paused_by_breaker_ = false;
            failures_in_a_row_ = 0;
            log::info(fmt::format("{}: the breaker is off; its pause ends", signal_name),
                      {{"worker", worker_label()}});
            refresh_pause_state();
        }
        if (settings_.persistent && started_running_ && state_ != State::draining) {
            for (std::size_t k = 0; k < static_cast<std::size_t>(settings_.concurrency); ++k)
                start_persistent(slots_[k]);
            // Lowered: the slots past it take no new job; their handlers go now, or after the
            // job they run (on_persistent_done).
            for (auto& slot : slots_)
                retire_persistent(slot);
        }
        leases_->schedule_renewal();
        heartbeat();
        maybe_claim();
    } catch (const cli::HelpRequested&) {
    } catch (const std::exception& error) {
        log::error(fmt::format("{}: the config could not be loaded ({}); keeping the old settings",
                               signal_name, error.what()),
                   {{"worker", worker_label()}});
    }
}

}  // namespace workq::work
