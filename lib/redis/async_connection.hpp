// A non-blocking connection to Redis on a Boost.Asio io_context: the worker's way to talk to
// the server without ever stopping its event loop (signals, child exits and timers keep
// flowing while a reply is on its way, and while the server is gone).
//
// It runs over the transport of redis/transport.hpp (TCP, Unix socket or TLS), waiting on the
// socket through the io_context; hiredis only parses the replies.
//
// Commands are pipelined: many may be in flight; each callback runs on the io_context, in
// order, with the reply, or with nullopt when the connection failed before the reply came.
// A failed connection stays failed (nobody can tell which reply would answer which command
// after that): the owner makes a new one, with backoff. Through Sentinel, a reply refusing a
// command as no longer master (READONLY, UNBLOCKED) fails the connection too. A command that
// gets no reply within its deadline fails the connection. No callback ever runs inside a call
// to this class, but for on_ready and on_lost, which run inside close().
//
// On a Redis Cluster (the endpoint's `cluster` set: redis/cluster.hpp) the connection is a
// router over one such connection per master used: it reads the slot map from the seeds (then
// from the masters it learnt of before), sends each command to the master of its routing key's
// slot, follows MOVED (and reads the map again) and ASK, waits out TRYAGAIN and CLUSTERDOWN with
// jittered retries, at most max_redirects per command. SCRIPT LOAD and FUNCTION LOAD go to every
// master it talks to, before anything else. When one node's connection fails, the router fails as a
// whole (the owner reconnects, reading the map again: a failover).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "redis/reply.hpp"
#include "redis/script.hpp"
#include "redis/url.hpp"

namespace workq::redis {

enum class Wait;  // redis/transport.hpp

class AsyncConnection : public std::enable_shared_from_this<AsyncConnection> {
  public:
    using ReplyHandler = std::function<void(std::optional<Reply>)>;
    using ReadyHandler = std::function<void(std::optional<std::string> error)>;
    using LostHandler = std::function<void(const std::string& reason)>;

    // Starts connecting (authenticating and selecting the database when the endpoint says
    // so; a Sentinel endpoint first asks the sentinels and then requires ROLE = master). `on_ready`
    // is called once: with nullopt when usable, else with the reason. `on_lost` is called once if a
    // ready connection later fails.
    // With `ask_cluster_mode` (a connection that runs scripts), a single server's login also
    // sends INFO cluster (no round trip of its own): cluster_enabled:0 there makes the scripts
    // call the library's functions without the slot guard (redis/script.hpp), from its reply on.
    static std::shared_ptr<AsyncConnection> open(boost::asio::io_context& io,
                                                 const Endpoint& endpoint,
                                                 std::chrono::milliseconds connect_timeout,
                                                 ReadyHandler on_ready, LostHandler on_lost,
                                                 bool ask_cluster_mode = false);
    ~AsyncConnection();
    AsyncConnection(const AsyncConnection&) = delete;
    AsyncConnection& operator=(const AsyncConnection&) = delete;

    // Sends a command. `deadline` bounds the wait for its reply (a blocking BLPOP needs its own
    // timeout plus a margin). On a failed connection the handler is called with nullopt, later,
    // from the io_context, never from inside this call.
    void command(std::vector<std::string> args, ReplyHandler handler,
                 std::chrono::milliseconds deadline = std::chrono::seconds(10));

    // Runs a script: FCALL of its function in the library (Redis >= 7), or EVALSHA where that is
    // not to be had. A call that did not run (redis/script.hpp: cache flushed, library gone,
    // server restarted, FCALL refused) goes again, as EVAL (or EVALSHA, refused at maxmemory).
    // That second send goes behind the commands pipelined meanwhile: where order matters, load
    // the library (load_library) and the scripts (SCRIPT LOAD) on connecting, before the first
    // one runs.
    void script(const ScriptSource& script, std::span<const std::string> keys,
                std::span<const std::string> args, ReplyHandler handler,
                std::chrono::milliseconds deadline = std::chrono::seconds(10));

    // FUNCTION LOAD of the library (on a cluster, on every master talked to, and on each one
    // opened later, first thing). Refused (an ACL, Redis 6.2): scripts go as EVALSHA from then
    // on, said once at debug level. A library of that name loaded already is as good.
    void load_library(std::string_view library);

    bool ready() const { return state_ == State::ready; }
    // Whether this connection's server said cluster_enabled:0 (open's ask_cluster_mode); false
    // on a cluster, before the reply, and where INFO was refused.
    bool plain_server() const { return plain_server_; }
    bool failed() const { return state_ == State::failed; }
    // The server, with the master's address once the sentinels named it.
    const Endpoint& endpoint() const { return endpoint_; }
    std::size_t in_flight() const;
    // How the bytes travel ("TCP", "Unix socket", the TLS version, cipher and verified name),
    // for the log; "closed" when there is no connection.
    std::string transport_security() const;

    // Drops the connection now; pending handlers get nullopt. on_lost is not called.
    void close();

    struct Impl;     // the transport and the reply reader, in the .cpp
    struct Cluster;  // the router's state, in the .cpp

  private:
    enum class State { connecting, ready, failed };
    AsyncConnection(boost::asio::io_context& io, Endpoint endpoint);
    void start(std::chrono::milliseconds connect_timeout, bool ask_cluster_mode);
    void fail(const std::string& reason);
    void fail_later(const std::string& reason);
    void watch_deadlines();
    void schedule_io();
    void do_io();
    void arm(Wait wait);
    void send(const std::vector<std::string>& args, ReplyHandler handler,
              std::chrono::milliseconds deadline);
    void send_script(const ScriptSource& script, std::shared_ptr<std::vector<std::string>> argv,
                     ReplyHandler handler, std::chrono::milliseconds deadline);
    void stop_functions(const std::string& why);
    // A command, sent directly or routed to its master (cluster: the router keeps a copy).
    void dispatch(const std::vector<std::string>& args, ReplyHandler handler,
                  std::chrono::milliseconds deadline);
    // Cluster: the router's parts.
    void cluster_start(std::chrono::milliseconds connect_timeout);
    void cluster_try_seed(std::size_t index, std::string errors);
    void cluster_route(std::vector<std::string> args, ReplyHandler handler,
                       std::chrono::milliseconds deadline, int redirects,
                       std::optional<HostPort> ask);
    std::shared_ptr<AsyncConnection> cluster_child(const HostPort& address);
    void cluster_refresh_map();

    boost::asio::io_context& io_;
    Endpoint endpoint_;
    std::unique_ptr<Impl> impl_;
    State state_ = State::connecting;
    ReadyHandler on_ready_;
    LostHandler on_lost_;
    std::shared_ptr<void> master_search_;  // a Sentinel endpoint's, until the master is found
    boost::asio::steady_timer deadline_timer_;
    std::unique_ptr<Cluster> cluster_;
    bool functions_ = true;      // scripts go as FCALL until the server refuses it
    bool plain_server_ = false;  // plain_server()
    bool loading_library_ = false;
};

}  // namespace workq::redis
