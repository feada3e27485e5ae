// One run of a handler process: COMMAND for one job (or a hook). Spawns it in a process group
// of its own, writes the payload to its stdin without blocking the event loop, keeps its stdout
// (up to a bound) as the result, relays its stderr line by line tagged with the job id and keeps
// the last 4 KiB as the error text, enforces the timeout (SIGTERM to the group, SIGKILL after
// the grace). The worker's SIGCHLD dispatch tells it when the process has exited; it reports
// once its output is drained.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "output.hpp"

namespace workq::work {

using Millis = std::chrono::milliseconds;

// Why the worker stopped a handler before it ended by itself.
enum class StopReason { none, timeout, lease_lost, cancelled, shutdown };

struct HandlerOutcome {
    int wait_status = 0;  // as waitpid reports it
    int exec_error = 0;   // errno of a failed exec; the process never ran COMMAND
    StopReason stopped = StopReason::none;
    std::string result;  // stdout, cut at the bound
    std::size_t result_dropped = 0;
    std::string error_tail;  // the last 4 KiB of stderr
    Millis duration{0};
    Millis timeout{0};

    bool exited_zero() const;
    int exit_code() const;  // -1 unless it exited
    // "exit 3", "signal SIGKILL", "timeout after 5m (then signal SIGTERM)".
    std::string describe() const;
};

class HandlerRun : public std::enable_shared_from_this<HandlerRun> {
  public:
    struct Params {
        std::string executable;
        std::vector<std::string> argv;
        std::vector<std::string> env;
        std::string payload;  // written to stdin (empty with --arg: stdin is /dev/null)
        bool payload_on_stdin = true;
        Millis timeout{0};  // 0: none
        Millis kill_grace{3000};
        std::size_t max_result = 1 << 20;
        std::string tag;  // prefixes relayed stderr lines: the job id
        int guard_fd = -1;
        int cgroup_fd = -1;  // the worker's HandlerCgroup's cgroup.procs, or -1
    };
    using Done = std::function<void(HandlerOutcome)>;

    // Spawns the process. If exec fails, `done` is still called (from the io_context) with
    // exec_error set. Throws Error when the process cannot be created at all (fork, pipes).
    static std::shared_ptr<HandlerRun> start(boost::asio::io_context& io, Params params, Done done);

    pid_t pid() const { return pid_; }
    bool exited() const { return exited_; }

    // The process has exited and been reaped (called by the worker's SIGCHLD dispatch).
    void on_exit(int wait_status);

    // Stops the handler: SIGTERM to its group now, SIGKILL after the kill grace.
    void stop(StopReason reason);
    // SIGKILL to the group now (a second SIGTERM to the worker, or the end of the budget).
    void kill_now();

  private:
    HandlerRun(boost::asio::io_context& io, Params params, Done done);
    void spawn();
    void write_stdin();
    void read_stdout();
    void read_stderr();
    void signal_group(int signal_number);
    void maybe_finish();

    boost::asio::io_context& io_;
    Params params_;
    Done done_;
    pid_t pid_ = -1;
    bool exited_ = false, finished_ = false;
    bool stdout_open_ = false, stderr_open_ = false;
    boost::asio::posix::stream_descriptor stdin_, stdout_, stderr_;
    boost::asio::steady_timer timeout_timer_, kill_timer_, drain_timer_;
    std::vector<char> stdout_buffer_, stderr_buffer_;
    BoundedText result_;
    Tail error_tail_;
    StderrRelay relay_;
    std::chrono::steady_clock::time_point started_;
    HandlerOutcome outcome_;
};

}  // namespace workq::work
