#include "handler_run.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <sys/wait.h>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>

#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"
#include "util/process.hpp"

namespace workq::work {
namespace asio = boost::asio;

namespace {

// After exit, how long an escaped process may hold the pipes.
constexpr Millis output_drain_limit{2000};

}  // namespace

bool HandlerOutcome::exited_zero() const {
    return exec_error == 0 && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

int HandlerOutcome::exit_code() const {
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
}

std::string HandlerOutcome::describe() const {
    if (exec_error != 0) return fmt::format("cannot execute: {}", std::strerror(exec_error));
    auto status = describe_wait_status(wait_status);
    switch (stopped) {
        case StopReason::timeout:
            return fmt::format("timeout after {} ({})", format_duration(timeout), status);
        case StopReason::lease_lost:
            return fmt::format("stopped: lease lost ({})", status);
        case StopReason::cancelled:
            return fmt::format("stopped: cancelled ({})", status);
        case StopReason::shutdown:
            return fmt::format("stopped: worker shutting down ({})", status);
        case StopReason::none:
            break;
    }
    return status;
}

HandlerRun::HandlerRun(asio::io_context& io, Params params, Done done)
    : io_(io),
      params_(std::move(params)),
      done_(std::move(done)),
      stdin_(io),
      stdout_(io),
      stderr_(io),
      timeout_timer_(io),
      kill_timer_(io),
      drain_timer_(io),
      stdout_buffer_(64 * 1024),
      stderr_buffer_(16 * 1024) {
    result_.limit = params_.max_result;
}

std::shared_ptr<HandlerRun> HandlerRun::start(asio::io_context& io, Params params, Done done) {
    std::shared_ptr<HandlerRun> run(new HandlerRun(io, std::move(params), std::move(done)));
    run->spawn();
    return run;
}

void HandlerRun::spawn() {
    SpawnRequest request;
    request.executable = params_.executable;
    // Moved, not copied: a run spawns once, and nothing reads them afterwards.
    request.argv = std::move(params_.argv);
    request.env = std::move(params_.env);
    request.guard_fd = params_.guard_fd;
    request.cgroup_fd = params_.cgroup_fd;
    started_ = std::chrono::steady_clock::now();
    auto child = spawn_piped(std::move(request), params_.payload_on_stdin);
    pid_ = child.result.pid;
    outcome_.exec_error = child.result.exec_error;
    outcome_.timeout = params_.timeout;
    stdout_.assign(child.stdout_read.release());
    stderr_.assign(child.stderr_read.release());
    stdout_open_ = stderr_open_ = true;
    read_stdout();
    read_stderr();
    if (child.stdin_write.valid()) {
        stdin_.assign(child.stdin_write.release());
        write_stdin();
    }
    if (params_.timeout.count() > 0 && child.result.exec_error == 0) {
        timeout_timer_.expires_after(params_.timeout);
        timeout_timer_.async_wait([self = shared_from_this()](auto error) {
            if (!error && !self->exited_) self->stop(StopReason::timeout);
        });
    }
}

void HandlerRun::write_stdin() {
    if (params_.payload.empty()) {
        stdin_.close();
        return;
    }
    asio::async_write(stdin_, asio::buffer(params_.payload),
                      [self = shared_from_this()](auto, std::size_t) {
                          // Written, or the handler closed its stdin (EPIPE): either way we are
                          // done with it.
                          boost::system::error_code ignored;
                          self->stdin_.close(ignored);
                      });
}

void HandlerRun::read_stdout() {
    stdout_.async_read_some(
        asio::buffer(stdout_buffer_), [self = shared_from_this()](auto error, std::size_t got) {
            if (error) {
                self->stdout_open_ = false;
                self->maybe_finish();
                return;
            }
            self->result_.append(std::string_view(self->stdout_buffer_.data(), got));
            self->read_stdout();
        });
}

void HandlerRun::read_stderr() {
    stderr_.async_read_some(asio::buffer(stderr_buffer_),
                            [self = shared_from_this()](auto error, std::size_t got) {
                                if (error) {
                                    self->relay_.flush(self->params_.tag);
                                    self->stderr_open_ = false;
                                    self->maybe_finish();
                                    return;
                                }
                                std::string_view chunk(self->stderr_buffer_.data(), got);
                                self->error_tail_.append(chunk);
                                self->relay_.feed(chunk, self->params_.tag);
                                self->read_stderr();
                            });
}

void HandlerRun::signal_group(int signal_number) {
    if (pid_ > 0 && !exited_) ::kill(-pid_, signal_number);
}

void HandlerRun::stop(StopReason reason) {
    if (exited_ || finished_) return;
    if (outcome_.stopped == StopReason::none) outcome_.stopped = reason;
    signal_group(SIGTERM);
    // A handler that ignores SIGTERM gets SIGKILL after the grace.
    kill_timer_.expires_after(params_.kill_grace);
    kill_timer_.async_wait([self = shared_from_this()](auto error) {
        if (!error) self->signal_group(SIGKILL);
    });
}

void HandlerRun::kill_now() {
    if (outcome_.stopped == StopReason::none) outcome_.stopped = StopReason::shutdown;
    signal_group(SIGKILL);
}

void HandlerRun::on_exit(int wait_status) {
    exited_ = true;
    outcome_.wait_status = wait_status;
    outcome_.duration =
        std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started_);
    timeout_timer_.cancel();
    kill_timer_.cancel();
    boost::system::error_code ignored;
    stdin_.close(ignored);
    // Output still in the pipes is read; a process that escaped the group and keeps them open
    // does not hold the job for longer than the drain limit.
    drain_timer_.expires_after(output_drain_limit);
    drain_timer_.async_wait([self = shared_from_this()](auto error) {
        if (error) return;
        boost::system::error_code ignore;
        self->stdout_.close(ignore);
        self->stderr_.close(ignore);
    });
    maybe_finish();
}

void HandlerRun::maybe_finish() {
    if (finished_ || !exited_ || stdout_open_ || stderr_open_) return;
    finished_ = true;
    drain_timer_.cancel();
    outcome_.result = std::move(result_.text);
    outcome_.result_dropped = result_.dropped;
    outcome_.error_tail = error_tail_.text();
    auto done = std::move(done_);
    asio::post(io_, [done = std::move(done), outcome = std::move(outcome_)]() mutable {
        done(std::move(outcome));
    });
}

}  // namespace workq::work
