// --persistent: one long-lived handler process per slot, fed one JSON line per job on its stdin
// and answering one JSON line on its stdout (CONTRACT.md §4):
//   -> {"id":"...","queue":"...","attempt":1,"payload":"..."}      (or "payload_base64")
//   <- {"id":"...","ok":true,"result":"..."}
//   <- {"id":"...","ok":false,"error":"...","retry":false}         ("retry" defaults to true)
// Lifecycle of a slot's process: starting -> ready <-> busy -> recycling | restarting -> ...
// A process that dies fails its job (counted) and is restarted after a growing delay (reset
// after a healthy stretch); a reply that is not valid JSON, names another id or never comes
// within the job's timeout fails the job and restarts the process; after --recycle-jobs,
// --recycle-age or --recycle-errors it is recycled between jobs (stdin closed, waited for,
// started fresh).
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

#include "handler_run.hpp"
#include "output.hpp"
#include "queue/handler_protocol.hpp"

namespace workq::work {

struct PersistentOutcome {
    enum class Kind { ok, error, crashed, bad_reply, timeout, stopped, exec_failed };
    Kind kind = Kind::ok;
    std::string result;  // ok
    std::string error;   // error text for the job
    std::string reason;  // short: "handler replied ok:false", "handler crashed (exit 3)", ...
    bool retry = true;   // false: a permanent failure (the handler said "retry": false)
    StopReason stopped = StopReason::none;
    Millis duration{0};
};

class PersistentHandler : public std::enable_shared_from_this<PersistentHandler> {
  public:
    struct Params {
        std::string executable;
        std::vector<std::string> argv;
        std::vector<std::string> env;
        Millis kill_grace{3000};
        std::size_t max_reply = 1 << 20;  // a reply line larger than this fails the job
        std::string tag;                  // for relayed stderr and logs: "slot-2"
        int guard_fd = -1;
        int cgroup_fd = -1;  // the worker's HandlerCgroup's cgroup.procs, or -1
        long long recycle_jobs = 0, recycle_errors = 0;
        Millis recycle_age{0};
    };
    enum class State { starting, ready, busy, recycling, restarting, stopped };
    using Spawned = std::function<void(pid_t)>;  // a new process exists: the worker tracks its pid
    using Changed = std::function<void()>;       // the state changed (ready again, ...)
    using Done = std::function<void(PersistentOutcome)>;

    // Starts the process; when it cannot be made (no pipe, no process), logs it and tries again
    // after the restart delay. Never throws for that.
    static std::shared_ptr<PersistentHandler> start(boost::asio::io_context& io, Params params,
                                                    Spawned spawned, Changed changed);

    State state() const { return state_; }
    bool ready() const { return state_ == State::ready; }
    pid_t pid() const { return pid_; }
    // True when the process could not be executed at all (the worker exits 4).
    int exec_error() const { return exec_error_; }

    // Sends one job; `done` is called once, from the io_context. Requires ready().
    void run_job(const queue::HandlerRequest& request, Millis timeout, Done done);

    // Stops the current job's handler process (lease lost, cancel, shutdown): the job ends
    // `stopped`, and the process is restarted unless the slot is shutting down.
    void stop_job(StopReason reason);

    // Closes stdin, waits up to the kill grace, then SIGTERM/SIGKILL; `done` when it is gone.
    void shutdown(std::function<void()> done);

    // The process exited (called by the worker's SIGCHLD dispatch after reaping it).
    void on_exit(int wait_status);

  private:
    PersistentHandler(boost::asio::io_context& io, Params params, Spawned spawned, Changed changed);
    void spawn();
    void read_stdout();
    void read_stderr();
    void handle_line(std::string_view line);
    void finish_job(PersistentOutcome outcome);
    void kill_process(bool restart_after);
    void schedule_restart();
    void set_state(State state);
    bool due_for_recycling() const;
    void recycle();

    boost::asio::io_context& io_;
    Params params_;
    Spawned spawned_;
    Changed changed_;
    State state_ = State::starting;
    pid_t pid_ = -1;
    int exec_error_ = 0;
    bool shutting_down_ = false;
    boost::asio::posix::stream_descriptor stdin_, stdout_, stderr_;
    boost::asio::steady_timer job_timer_, kill_timer_, restart_timer_, drain_timer_;
    bool stdout_eof_ = false;
    std::function<void()> exit_pending_;
    std::vector<char> read_buffer_, error_buffer_;
    std::string line_;
    Tail error_tail_;  // of the current job's stderr
    StderrRelay relay_;
    std::string pending_write_;
    Done done_;
    std::string current_id_;
    std::chrono::steady_clock::time_point job_started_, process_started_;
    long long jobs_done_ = 0, errors_ = 0;
    int restarts_in_a_row_ = 0;
    std::function<void()> on_gone_;
    bool restart_when_gone_ = false;
};

std::string_view to_string(PersistentHandler::State state);

}  // namespace workq::work
