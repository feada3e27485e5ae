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
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "redis/reply.hpp"
#include "redis/url.hpp"

namespace workq::redis {

struct ScriptSource;  // defined with the embedded scripts
enum class Wait;      // redis/transport.hpp

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
    static Connection open_server(const Endpoint& endpoint, Timeouts timeouts = {});

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

    // Runs an embedded script by its SHA1, loading it when the server answers NOSCRIPT.
    // An error reply raised by the script is returned, not thrown.
    Reply run_script(const ScriptSource& script, std::span<const std::string_view> keys,
                     std::span<const std::string_view> args);

    // Pipelined scripts: append_script() queues an EVALSHA; read_script_replies() reads them
    // all and re-sends, in order, any that met NOSCRIPT (after a SCRIPT FLUSH or a restart).
    void append_script(const ScriptSource& script, std::span<const std::string_view> keys,
                       std::span<const std::string_view> args);
    std::vector<Reply> read_script_replies();

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
    void begin_durable_writes() { first_answered_by_.reset(); }
    long long wait_for_replicas(long long replicas, std::chrono::milliseconds timeout);

    const Endpoint& endpoint() const { return endpoint_; }

    // How the bytes travel, for `workq-status`: "TCP", "Unix socket", or the TLS version,
    // cipher and the name the server was verified as.
    std::string transport_security() const;

  private:
    struct Context;
    struct PendingScript {
        const ScriptSource* script;
        std::vector<std::string> argv;  // EVALSHA sha numkeys keys... args...
    };
    Connection(std::unique_ptr<Context> context, Endpoint endpoint);
    [[noreturn]] void fail(std::string_view during, std::string_view reason);
    void flush();
    void wait(Wait what);
    Reply receive();  // flushes, then reads one reply
    // Sentinel: whether the server closed the connection while nothing was asked of it.
    bool closed_while_idle();
    // Sentinel: connects to the master the sentinels name now, keeping the unsent commands.
    void reopen(std::string_view why);

    std::unique_ptr<Context> context_;
    Endpoint endpoint_;
    std::vector<PendingScript> pending_scripts_;
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
};

}  // namespace workq::redis
