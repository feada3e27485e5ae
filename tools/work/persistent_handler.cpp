#include "persistent_handler.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>

#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"
#include "util/process.hpp"
#include "util/text.hpp"

namespace workq::work {
namespace asio = boost::asio;

namespace {

constexpr Millis first_restart_delay{100};  // the minimum delay between restarts
constexpr Millis longest_restart_delay{30'000};
constexpr Millis healthy_stretch{30'000};  // a process that lived this long resets the delay
constexpr std::size_t reply_envelope = 64 * 1024;  // room for the JSON around the result
// How much of a line that is not a reply a message quotes: enough to recognise a banner.
constexpr std::size_t quoted_line_chars = 120;
constexpr Millis exit_drain_limit{2000};

}  // namespace

std::string_view to_string(PersistentHandler::State state) {
    switch (state) {
        case PersistentHandler::State::starting:
            return "starting";
        case PersistentHandler::State::ready:
            return "ready";
        case PersistentHandler::State::busy:
            return "busy";
        case PersistentHandler::State::recycling:
            return "recycling";
        case PersistentHandler::State::restarting:
            return "restarting";
        case PersistentHandler::State::stopped:
            return "stopped";
    }
    return "?";
}

PersistentHandler::PersistentHandler(asio::io_context& io, Params params, Spawned spawned,
                                     Changed changed)
    : io_(io),
      params_(std::move(params)),
      spawned_(std::move(spawned)),
      changed_(std::move(changed)),
      stdin_(io),
      stdout_(io),
      stderr_(io),
      job_timer_(io),
      kill_timer_(io),
      restart_timer_(io),
      drain_timer_(io),
      read_buffer_(64 * 1024),
      error_buffer_(16 * 1024) {}

std::shared_ptr<PersistentHandler> PersistentHandler::start(asio::io_context& io, Params params,
                                                            Spawned spawned, Changed changed) {
    std::shared_ptr<PersistentHandler> handler(
        new PersistentHandler(io, std::move(params), std::move(spawned), std::move(changed)));
    try {
        handler->spawn();
    } catch (const std::exception& failure) {
        // No pipe or no process to be had (descriptors run out): not a reason to stop the
        // worker. Tried again with the growing restart delay, as after a crash.
        log::error(fmt::format("cannot start the persistent handler: {}", failure.what()),
                   {{"slot", handler->params_.tag}});
        handler->schedule_restart();
    }
    return handler;
}

void PersistentHandler::set_state(State state) {
    if (state_ == state) return;
    // Twice per job: the line's fields are built only when it is written.
    if (log::enabled(log::Level::debug))
        log::debug(fmt::format("persistent handler {} -> {}", to_string(state_), to_string(state)),
                   {{"slot", params_.tag}, {"pid", std::to_string(pid_)}});
    state_ = state;
}

void PersistentHandler::spawn() {
    set_state(State::starting);
    SpawnRequest request;
    request.executable = params_.executable;
    request.argv = params_.argv;
    request.env = params_.env;
    request.guard_fd = params_.guard_fd;
    request.cgroup_fd = params_.cgroup_fd;
    auto child = spawn_piped(std::move(request), true);
    pid_ = child.result.pid;
    exec_error_ = child.result.exec_error;
    process_started_ = std::chrono::steady_clock::now();
    jobs_done_ = errors_ = 0;
    stdin_ = asio::posix::stream_descriptor(io_, child.stdin_write.release());
    stdout_ = asio::posix::stream_descriptor(io_, child.stdout_read.release());
    stderr_ = asio::posix::stream_descriptor(io_, child.stderr_read.release());
    line_.clear();
    relay_.reset();
    stdout_eof_ = false;
    spawned_(pid_);
    read_stdout();
    read_stderr();
    if (exec_error_ != 0) {
        set_state(State::stopped);
        asio::post(io_, [self = shared_from_this()] { self->changed_(); });
        return;
    }
    set_state(State::ready);
    asio::post(io_, [self = shared_from_this()] { self->changed_(); });
}

void PersistentHandler::run_job(const queue::HandlerRequest& request, Millis timeout, Done done) {
    set_state(State::busy);
    done_ = std::move(done);
    current_id_ = request.id;
    job_started_ = std::chrono::steady_clock::now();
    // One buffer per slot, reused from job to job (no write is pending: the slot was ready).
    pending_write_.clear();
    queue::encode_request(request, pending_write_);
    asio::async_write(
        stdin_, asio::buffer(pending_write_), [self = shared_from_this()](auto error, std::size_t) {
            // A process that died or closed its stdin: its exit (or silence) ends the job.
            if (error)
                log::debug("writing to the persistent handler failed: " + error.message(),
                           {{"slot", self->params_.tag}});
        });
    if (timeout.count() > 0) {
        job_timer_.expires_after(timeout);
        job_timer_.async_wait([self = shared_from_this(), timeout](auto error) {
            if (error || self->state_ != State::busy) return;
            PersistentOutcome outcome;
            outcome.kind = PersistentOutcome::Kind::timeout;
            outcome.reason = fmt::format("timeout after {}: no reply", format_duration(timeout));
            outcome.error = self->error_tail_.empty() ? outcome.reason : self->error_tail_.text();
            self->finish_job(std::move(outcome));
            self->kill_process(true);
        });
    }
}

void PersistentHandler::read_stdout() {
    stdout_.async_read_some(asio::buffer(read_buffer_), [self = shared_from_this()](
                                                            auto error, std::size_t got) {
        if (error) {  // EOF: the process is going; on_exit decides, now that all is read
            self->stdout_eof_ = true;
            if (self->exit_pending_) {
                self->drain_timer_.cancel();
                std::exchange(self->exit_pending_, nullptr)();
            }
            return;
        }
        self->line_.append(self->read_buffer_.data(), got);
        std::size_t start = 0;
        for (;;) {
            auto newline = self->line_.find('\n', start);
            if (newline == std::string::npos) break;
            self->handle_line(std::string_view(self->line_).substr(start, newline - start));
            start = newline + 1;
            if (self->state_ == State::restarting || self->state_ == State::stopped) break;
        }
        self->line_.erase(0, start);
        if (self->line_.size() > self->params_.max_reply + reply_envelope) {
            self->line_.clear();
            if (self->state_ == State::busy) {
                PersistentOutcome outcome;
                outcome.kind = PersistentOutcome::Kind::bad_reply;
                outcome.reason = "bad reply";
                outcome.error = fmt::format("the reply line is longer than {} bytes (--max-result)",
                                            self->params_.max_reply + reply_envelope);
                self->finish_job(std::move(outcome));
            }
            self->kill_process(true);
            return;
        }
        self->read_stdout();
    });
}

void PersistentHandler::read_stderr() {
    stderr_.async_read_some(asio::buffer(error_buffer_), [self = shared_from_this()](
                                                             auto error, std::size_t got) {
        // Lines name the job they were written during, or the slot between jobs.
        std::string_view tag = self->state_ == State::busy ? self->current_id_ : self->params_.tag;
        if (error) {
            self->relay_.flush(tag);
            return;
        }
        std::string_view chunk(self->error_buffer_.data(), got);
        if (self->state_ == State::busy) self->error_tail_.append(chunk);
        self->relay_.feed(chunk, tag);
        self->read_stderr();
    });
}

void PersistentHandler::handle_line(std::string_view line) {
    if (state_ != State::busy) {
        // Two replies for one job, or chatter on stdout: the protocol is broken, start afresh.
        log::warn(fmt::format("persistent handler wrote a line while no job was running: \"{}\" "
                              "(its stdout carries replies only: print banners and logs to "
                              "stderr); restarting it",
                              one_line(line, quoted_line_chars)),
                  {{"slot", params_.tag}, {"pid", std::to_string(pid_)}});
        kill_process(true);
        return;
    }
    auto reply = queue::parse_reply(line);
    PersistentOutcome outcome;
    if (!reply.valid) {
        // The line itself, escaped and cut, so that a banner or a log line printed to stdout
        // is seen for what it is.
        outcome.kind = PersistentOutcome::Kind::bad_reply;
        outcome.reason = "bad reply";
        outcome.error = fmt::format(
            "{}: \"{}\" (a persistent handler's stdout carries its replies only: print banners "
            "and logs to stderr)",
            reply.problem, one_line(line, quoted_line_chars));
    } else if (reply.id != current_id_) {
        outcome.kind = PersistentOutcome::Kind::bad_reply;
        outcome.reason = "bad reply";
        outcome.error =
            fmt::format("the reply names job '{}', not {}", reply.id.substr(0, 200), current_id_);
    } else if (reply.ok) {
        outcome.kind = PersistentOutcome::Kind::ok;
        outcome.result = std::move(reply.result);
    } else {
        outcome.kind = PersistentOutcome::Kind::error;
        outcome.retry = reply.retry;
        outcome.reason =
            reply.retry ? "handler replied ok:false" : "handler replied ok:false, retry:false";
        outcome.error = reply.error.empty() ? outcome.reason : reply.error;
    }
    bool broken = outcome.kind == PersistentOutcome::Kind::bad_reply;
    finish_job(std::move(outcome));
    if (broken) {
        kill_process(true);
        return;
    }
    if (due_for_recycling()) {
        recycle();
        return;
    }
    set_state(State::ready);
    changed_();
}

void PersistentHandler::finish_job(PersistentOutcome outcome) {
    if (!done_) return;
    job_timer_.cancel();
    outcome.duration =
        std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - job_started_);
    if (outcome.kind != PersistentOutcome::Kind::ok &&
        outcome.kind != PersistentOutcome::Kind::stopped)
        ++errors_;
    ++jobs_done_;
    error_tail_.clear();
    current_id_.clear();
    auto done = std::move(done_);
    done_ = nullptr;
    if (state_ == State::busy) set_state(State::ready);
    asio::post(io_, [done = std::move(done), outcome = std::move(outcome)]() mutable {
        done(std::move(outcome));
    });
}

bool PersistentHandler::due_for_recycling() const {
    if (params_.recycle_jobs > 0 && jobs_done_ >= params_.recycle_jobs) return true;
    if (params_.recycle_errors > 0 && errors_ >= params_.recycle_errors) return true;
    if (params_.recycle_age.count() > 0 &&
        std::chrono::steady_clock::now() - process_started_ >= params_.recycle_age)
        return true;
    return false;
}

void PersistentHandler::recycle() {
    log::info("recycling the persistent handler", {{"slot", params_.tag},
                                                   {"pid", std::to_string(pid_)},
                                                   {"jobs", std::to_string(jobs_done_)},
                                                   {"errors", std::to_string(errors_)}});
    set_state(State::recycling);
    restart_when_gone_ = true;
    restarts_in_a_row_ = 0;
    // Finish, close stdin, wait: a well-behaved handler exits on EOF; one that does not is
    // stopped after the kill grace.
    boost::system::error_code ignored;
    stdin_.close(ignored);
    kill_timer_.expires_after(params_.kill_grace);
    kill_timer_.async_wait([self = shared_from_this()](auto error) {
        if (!error && self->pid_ > 0) self->kill_process(true);
    });
}

void PersistentHandler::kill_process(bool restart_after) {
    restart_when_gone_ = restart_after && !shutting_down_;
    if (state_ != State::recycling) set_state(restart_after ? State::restarting : State::stopped);
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGTERM);
    kill_timer_.expires_after(params_.kill_grace);
    kill_timer_.async_wait([self = shared_from_this(), pid = pid_](auto error) {
        if (!error && self->pid_ == pid) ::kill(-pid, SIGKILL);
    });
}

void PersistentHandler::stop_job(StopReason reason) {
    if (state_ != State::busy) return;
    PersistentOutcome outcome;
    outcome.kind = PersistentOutcome::Kind::stopped;
    outcome.stopped = reason;
    outcome.reason = reason == StopReason::lease_lost  ? "stopped: lease lost"
                     : reason == StopReason::cancelled ? "cancelled"
                                                       : "stopped: worker shutting down";
    outcome.error = outcome.reason;
    finish_job(std::move(outcome));
    kill_process(reason != StopReason::shutdown);
}

void PersistentHandler::shutdown(std::function<void()> done) {
    shutting_down_ = true;
    restart_timer_.cancel();
    restart_when_gone_ = false;
    if (pid_ <= 0) {
        set_state(State::stopped);
        asio::post(io_, std::move(done));
        return;
    }
    on_gone_ = std::move(done);
    if (state_ == State::busy) stop_job(StopReason::shutdown);
    boost::system::error_code ignored;
    stdin_.close(ignored);
    set_state(State::stopped);
    kill_timer_.expires_after(params_.kill_grace);
    kill_timer_.async_wait([self = shared_from_this(), pid = pid_](auto error) {
        if (!error && self->pid_ == pid) {
            ::kill(-pid, SIGTERM);
            self->kill_timer_.expires_after(self->params_.kill_grace);
            self->kill_timer_.async_wait([self, pid](auto again) {
                if (!again && self->pid_ == pid) ::kill(-pid, SIGKILL);
            });
        }
    });
}

void PersistentHandler::on_exit(int wait_status) {
    auto lived = std::chrono::steady_clock::now() - process_started_;
    auto status = describe_wait_status(wait_status);
    pid_ = -1;
    kill_timer_.cancel();
    auto finish = [self = shared_from_this(), status, lived] {
        boost::system::error_code ignored;
        self->stdin_.close(ignored);
        self->stdout_.close(ignored);
        self->stderr_.close(ignored);
        if (self->state_ == State::busy) {
            PersistentOutcome outcome;
            outcome.kind = PersistentOutcome::Kind::crashed;
            outcome.reason = fmt::format("handler crashed ({})", status);
            outcome.error = self->error_tail_.empty() ? outcome.reason : self->error_tail_.text();
            self->finish_job(std::move(outcome));
            self->restart_when_gone_ = !self->shutting_down_;
        } else if (self->state_ == State::ready || self->state_ == State::starting) {
            // Died between jobs (or before the first one): restart, with the growing delay.
            log::warn(fmt::format("persistent handler exited ({}); restarting it", status),
                      {{"slot", self->params_.tag}});
            self->restart_when_gone_ = !self->shutting_down_;
        }
        if (lived >= healthy_stretch) self->restarts_in_a_row_ = 0;
        if (self->on_gone_) std::exchange(self->on_gone_, nullptr)();
        if (self->restart_when_gone_ && !self->shutting_down_)
            self->schedule_restart();
        else
            self->set_state(State::stopped);
    };
    // A reply written just before exiting may still be in the pipe: read to EOF before
    // judging (bounded: a grandchild that escaped the group may hold the pipe open).
    if (stdout_eof_) {
        finish();
        return;
    }
    exit_pending_ = finish;
    drain_timer_.expires_after(exit_drain_limit);
    drain_timer_.async_wait([self = shared_from_this()](auto error) {
        if (!error && self->exit_pending_) std::exchange(self->exit_pending_, nullptr)();
    });
}

void PersistentHandler::schedule_restart() {
    set_state(state_ == State::recycling ? State::recycling : State::restarting);
    Millis delay{0};
    if (state_ == State::restarting) {
        delay = std::min(longest_restart_delay,
                         Millis(first_restart_delay.count() << std::min(restarts_in_a_row_, 9)));
        ++restarts_in_a_row_;
    }
    restart_timer_.expires_after(delay);
    restart_timer_.async_wait([self = shared_from_this()](auto error) {
        if (error || self->shutting_down_) return;
        try {
            self->spawn();
        } catch (const std::exception& failure) {
            log::error(fmt::format("cannot start the persistent handler: {}", failure.what()),
                       {{"slot", self->params_.tag}});
            self->schedule_restart();
        }
    });
}

}  // namespace workq::work
