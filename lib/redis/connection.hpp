// A blocking connection to one Redis server: the command-line tools' way to talk to it, over
// the transport of redis/transport.hpp (TCP, Unix socket or TLS). Commands are sent with
// explicit lengths (payloads may hold NUL bytes). A connection that failed (timeout, reset,
// protocol error) is dead: every later call throws RedisError, as nobody can tell which reply
// would answer which command after that.
//
// Through Sentinel, a failover is followed where that loses nothing: a connection found closed
// before a command is written to it, and a command the server refused as no longer master
// (READONLY, UNBLOCKED: it did not run), go to the master the sentinels name now, within
// Timeouts::failover. A connection lost after a command was written is an error as above (the
// command may have run).
//
// On a Redis Cluster (CONTRACT.md section 10; a URL of several seeds, or one server that says
// cluster_enabled:1) the connection is a router: one connection per master used, opened when a
// command first goes there; each command goes to the master of its routing key's slot
// (redis/cluster.hpp), MOVED and ASK are followed, TRYAGAIN and CLUSTERDOWN waited out with
// jittered retries within Timeouts::failover, at most max_redirects times per command. Replies
// still come back in the order the commands were appended. A command whose node cannot be
// reached before it is written waits for the cluster to name a new master (a failover), within
// Timeouts::failover; a connection lost after a command was written is an error, as above.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "redis/reply.hpp"
#include "redis/url.hpp"
#include "util/errors.hpp"

namespace workq::redis {

struct ScriptSource;    // defined with the embedded scripts
enum class ScriptMiss;  // redis/script.hpp
enum class Wait;        // redis/transport.hpp

struct Timeouts {
    std::chrono::milliseconds connect{5000};
    std::chrono::milliseconds command{5000};
    // Sentinel: how long to keep asking for a master while a failover is under way. Below the
    // 10 s within which a tool that cannot reach Redis exits (CONTRACT.md section 2).
    std::chrono::milliseconds failover{8000};
};

class Connection {
  public:
    // Connects, authenticates and selects the database. Throws RedisError with a message that
    // names the server (never the password) and the reason: refused, timed out, wrong password.
    // A Sentinel endpoint connects to the master the sentinels name, once it answers ROLE as
    // master (redis/sentinel.hpp: connect_to_master).
    static Connection open(const Endpoint& endpoint, Timeouts timeouts = {});
    // Like open(), to the endpoint's host itself: no sentinel is asked (a Sentinel endpoint's
    // host is the address they gave).
    // With `cluster_info`, INFO cluster is sent in the same write as AUTH and SELECT and its
    // reply (maybe an error) stored there; cluster_enabled:0 makes plain_server() true.
    static Connection open_server(const Endpoint& endpoint, Timeouts timeouts = {},
                                  std::optional<Reply>* cluster_info = nullptr);

    Connection(Connection&&) noexcept;
    Connection& operator=(Connection&&) noexcept;
    ~Connection();

    // Sends one command and returns its reply; an error reply is returned, not thrown.
    // Throws RedisError when the connection fails.
    Reply command(std::span<const std::string_view> args);
    Reply command(std::initializer_list<std::string_view> args) {
        return command(std::span<const std::string_view>(args.begin(), args.size()));
    }
    // Like command(), but an error reply throws RedisError naming the command.
    Reply call(std::initializer_list<std::string_view> args);

    // Pipelining: queue commands with append(), then read one reply per command, in order.
    void append(std::span<const std::string_view> args);
    void append(std::initializer_list<std::string_view> args) {
        append(std::span<const std::string_view>(args.begin(), args.size()));
    }
    Reply read_reply();

    // Runs an embedded script: FCALL of its function in the library, or EVALSHA where that is
    // not to be had, loading what the server lacks (redis/script.hpp). An error reply raised by
    // the script is returned, not thrown.
    Reply run_script(const ScriptSource& script, std::span<const std::string_view> keys,
                     std::span<const std::string_view> args);

    // Pipelined scripts: append_script() queues an FCALL (or EVALSHA); read_script_replies()
    // reads them all and re-sends, in order, any that did not run (after a SCRIPT FLUSH, a
    // FUNCTION FLUSH or a restart: redis/script.hpp).
    void append_script(const ScriptSource& script, std::span<const std::string_view> keys,
                       std::span<const std::string_view> args);
    std::vector<Reply> read_script_replies();
    // false: scripts go as EVALSHA from now on, as on a server without functions (the tests of
    // that path; a connection finds it out by itself).
    void use_functions(bool on) { functions_ = on; }

    // How long a command may take before the connection is declared dead; blocking commands
    // (BLPOP) need more than their own timeout.
    void set_command_timeout(std::chrono::milliseconds timeout);

    // Durable writes (workq-enqueue --replicas): begin_durable_writes() before the writes,
    // then wait_for_replicas() WAITs until `replicas` replicas have every write this
    // connection made, or `timeout` passed (0: no limit), and returns how many have them
    // (which may be fewer, or more). Throws RedisError when the server refuses, or when a
    // failover moved the connection to another master after the first of those writes was
    // answered: the new master cannot vouch for what the old one acknowledged (writes sent
    // again to the new master before any answer are its own, and covered).
    // On a cluster, WAIT goes to every master written to since begin_durable_writes(), and the
    // smallest count is returned.
    void begin_durable_writes();
    long long wait_for_replicas(long long replicas, std::chrono::milliseconds timeout);

    // The server; for a cluster, the endpoint given with its seeds (cluster set, also when
    // found out from one server's INFO).
    const Endpoint& endpoint() const { return endpoint_; }

    // A cluster's masters as the slot map says, in the order first met, each with how many
    // slots it serves; empty when not a cluster. For `workq-status`.
    struct ClusterMaster {
        HostPort address;
        int slots = 0;
    };
    std::vector<ClusterMaster> cluster_masters() const;
    bool is_cluster() const { return cluster_ != nullptr; }
    // Whether this connection's server said cluster_enabled:0 (INFO cluster on the way in: a
    // single server named by URL, a Unix socket, the master the sentinels named): its scripts
    // run the library's functions without the slot guard (redis/script.hpp). False on a
    // cluster and where INFO was refused or not asked.
    bool plain_server() const { return plain_server_; }
    // The master that serves `key`'s slot as the slot map says (nullopt when not a cluster, or
    // when no master serves it now).
    std::optional<HostPort> cluster_master_of(std::string_view key) const;

    // How the bytes travel, for `workq-status`: "TCP", "Unix socket", or the TLS version,
    // cipher and the name the server was verified as.
    std::string transport_security() const;

  private:
    struct Context;
    struct Cluster;  // the router's state, in connection.cpp
    struct PendingScript {
        const ScriptSource* script;
        std::vector<std::string> argv;  // FCALL function (or EVALSHA sha) numkeys keys... args...
    };
    // FUNCTION LOAD of `script`'s library where `calls` (of `pending`) found it missing; when it
    // is refused, functions_ goes false.
    void load_library(const ScriptSource& script, const std::vector<PendingScript>& pending,
                      const std::vector<std::pair<std::size_t, ScriptMiss>>& calls);
    Connection(std::unique_ptr<Context> context, Endpoint endpoint);
    [[noreturn]] void fail(std::string_view during, std::string_view reason);
    void flush();
    void wait(Wait what);
    Reply receive();  // flushes, then reads one reply
    // Sentinel: whether the server closed the connection while nothing was asked of it.
    bool closed_while_idle();
    // Sentinel: connects to the master the sentinels name now, keeping the unsent commands.
    void reopen(std::string_view why);
    // Cluster: connects through the seeds (or `seed`, already open) and reads the slot map.
    static Connection open_cluster(const Endpoint& endpoint, Timeouts timeouts,
                                   std::optional<Connection> seed);
    void cluster_append(std::span<const std::string_view> args);
    Reply cluster_read_reply();
    void cluster_dispatch(std::size_t sequence);
    void cluster_read_from(std::size_t node);
    std::size_t cluster_node_for(std::size_t sequence);
    Connection& cluster_connection(std::size_t node);
    void refresh_slot_map(std::string_view why);
    [[noreturn]] void cluster_fail(const RedisError& error);

    std::unique_ptr<Context> context_;
    Endpoint endpoint_;
    std::vector<PendingScript> pending_scripts_;
    // Whether scripts go as FCALL (Redis >= 7; redis/script.hpp), until the server refuses it.
    bool functions_ = true;
    bool plain_server_ = false;  // plain_server()
    // Sentinel: the endpoint as given (no master address), the timeouts to reconnect with, and
    // every command appended and not yet answered, oldest first (`written` of them sent), kept
    // to be sent again to the next master.
    Endpoint origin_;
    Timeouts timeouts_;
    std::deque<std::string> unanswered_;
    std::size_t written_ = 0;
    unsigned reopened_ = 0;  // how many times the connection moved to another master
    // Durable writes: the value of reopened_ when the first reply since begin_durable_writes()
    // came (none yet: empty).
    std::optional<unsigned> first_answered_by_;
    std::unique_ptr<Cluster> cluster_;  // set on a cluster: then context_ is empty
};

}  // namespace workq::redis
