#include "redis/connection.hpp"

#include <poll.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <thread>

#include "redis/cluster.hpp"
#include "redis/resp.hpp"
#include "redis/script.hpp"
#include "redis/sentinel.hpp"
#include "redis/transport.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"
#include "util/names.hpp"

namespace workq::redis {

struct Connection::Context {
    std::unique_ptr<Transport> transport;
    ReplyReader reader;
    std::string output;  // commands appended and not yet sent
    std::chrono::milliseconds timeout{5000};
};

namespace {

using Clock = std::chrono::steady_clock;

// How many times one command goes to a new master after a refusal as "not master" (a second
// failover while the first is followed is rare; a third means the sentinels disagree).
constexpr int max_failover_resends = 3;

// Waits until the socket is ready for what `wait` says, or the deadline passes (false).
bool wait_until(int fd, Wait wait, Clock::time_point deadline) {
    pollfd watched{fd, static_cast<short>(wait == Wait::writable ? POLLOUT : POLLIN), 0};
    for (;;) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        // poll takes an int: a long wait (WAIT with no limit) is made of several.
        auto slice = std::min<long long>(left.count(), 60 * 60 * 1000);
        int ready = ::poll(&watched, 1, static_cast<int>(slice));
        if (ready > 0) return true;  // an error or hang-up shows in the next read or write
        if (ready < 0 && errno != EINTR) throw TransportError(std::strerror(errno));
    }
}

// Cluster: the owner recorded for the reply to an ASKING sent before a command, which nobody
// reads.
constexpr std::size_t discarded = std::numeric_limits<std::size_t>::max();

}  // namespace

struct Connection::Cluster {
    Endpoint origin;  // as given, with its seeds
    Timeouts timeouts;
    std::chrono::milliseconds command_timeout{5000};
    SlotMap map;

    // A master some command went to, with its connection (opened on first use).
    struct Node {
        HostPort address;
        std::optional<Connection> connection;
        // The sequence number of each command sent there and not answered yet, oldest first
        // (`discarded` for an ASKING): a node answers in the order it was asked.
        std::deque<std::size_t> owners;
    };
    std::vector<Node> nodes;

    // A command appended and not yet returned by read_reply(), with its reply once read (the
    // replies of several nodes come in any order; they are returned in the order appended).
    struct Entry {
        std::vector<std::string> argv;
        std::optional<std::size_t> node;  // where it was sent last
        std::optional<Reply> reply;
        int redirects = 0;
        std::optional<HostPort> ask;  // an ASK's target: the next send goes there, once
        std::optional<Clock::time_point> waiting_since;  // the first TRYAGAIN or CLUSTERDOWN
    };
    std::deque<Entry> entries;
    std::size_t first_sequence = 0;  // the sequence number of entries.front()
    std::set<std::size_t> written;   // the nodes written to since begin_durable_writes()

    Entry& entry(std::size_t sequence) { return entries[sequence - first_sequence]; }
    std::size_t node_index(const HostPort& address) {
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i].address == address) return i;
        nodes.push_back(Node{address, std::nullopt, {}});
        return nodes.size() - 1;
    }
    std::string name() const { return describe(origin); }
};

Connection::Connection(std::unique_ptr<Context> context, Endpoint endpoint)
    : context_(std::move(context)), endpoint_(std::move(endpoint)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;

Connection Connection::open(const Endpoint& endpoint, Timeouts timeouts) {
    if (endpoint.cluster) return open_cluster(endpoint, timeouts, std::nullopt);
    if (!endpoint.sentinel && endpoint.kind == Endpoint::Kind::tcp &&
        endpoint.embedded_state.empty()) {
        // One server named: it may be a cluster's node (CONTRACT.md section 10). INFO cluster
        // says so, sent in the same write as AUTH and SELECT (no round trip of its own).
        std::optional<Reply> info;
        auto connection = open_server(endpoint, timeouts, &info);
        if (!info || !cluster_enabled(*info)) return connection;
        auto seeded = endpoint;
        seeded.cluster = ClusterSettings{{HostPort{endpoint.host, endpoint.port}}};
        return open_cluster(seeded, timeouts, std::move(connection));
    }
    // A Unix socket (the embedded server too), or the address sentinels gave: no INFO cluster.
    // It would only tell whether the scripts may skip their slot guard (plain_server(); the
    // worker's connection asks for that), and a tool that refuses its input after connecting
    // (workq-enqueue reading stdin) must have sent no command at all (CONTRACT.md, bad input).
    if (!endpoint.sentinel || !endpoint.host.empty()) return open_server(endpoint, timeouts);
    auto connection = connect_to_master(endpoint, timeouts);
    connection.origin_ = endpoint;
    connection.timeouts_ = timeouts;
    return connection;
}

Connection Connection::open_server(const Endpoint& endpoint, Timeouts timeouts,
                                   std::optional<Reply>* cluster_info) {
    auto context = std::make_unique<Context>();
    context->timeout = timeouts.command;
    // One deadline for the whole way in: the TCP connect (each address the name resolves to)
    // and the TLS handshake.
    auto deadline = Clock::now() + timeouts.connect;
    try {
        Connector connector(endpoint);
        for (auto wait = connector.step(); wait != Wait::none; wait = connector.step())
            if (!wait_until(connector.fd(), wait, deadline)) throw TransportError("timed out");
        context->transport = connector.finish();
        for (auto wait = context->transport->handshake(); wait != Wait::none;
             wait = context->transport->handshake())
            if (!wait_until(context->transport->fd(), wait, deadline))
                throw TransportError("timed out in the TLS handshake");
    } catch (const UntrustedServer&) {
        throw;  // says what it refused, and must not read as "nobody there"
    } catch (const TransportError& error) {
        throw RedisError(fmt::format("cannot connect to {}: {}", describe(endpoint), error.what()));
    }

    Connection connection(std::move(context), endpoint);
    // AUTH, SELECT and the cluster probe go in one write and their replies are read in order:
    // one round trip on the way in, not one each. A refused AUTH makes SELECT and INFO fail
    // too (NOAUTH); their replies are read and dropped with it, as before.
    auto db = std::to_string(endpoint.database);
    if (!endpoint.password.empty()) {
        std::vector<std::string_view> auth{"AUTH"};
        if (!endpoint.username.empty()) auth.push_back(endpoint.username);
        auth.push_back(endpoint.password);
        connection.append(auth);
    }
    if (endpoint.database != 0) connection.append({"SELECT", db});
    if (cluster_info) connection.append({"INFO", "cluster"});
    std::optional<std::string> refused;
    if (!endpoint.password.empty()) {
        auto reply = connection.read_reply();
        if (reply.is_error())
            refused = fmt::format("cannot log in to {}: {}", describe(endpoint),
                                  printable(reply.text, 200));
    }
    try {
        if (endpoint.database != 0) {
            auto reply = connection.read_reply();
            if (reply.is_error() && !refused)
                refused = fmt::format("cannot select database {} on {}: {}", endpoint.database,
                                      describe(endpoint), printable(reply.text, 200));
        }
        // A server that refuses INFO (an ACL) is taken as a single server, as it was before
        // clusters were known.
        if (cluster_info) {
            *cluster_info = connection.read_reply();
            connection.plain_server_ = cluster_disabled(**cluster_info);
        }
    } catch (const RedisError&) {
        if (!refused) throw;  // a proxy that hangs up on a refused login: say the refusal
    }
    if (refused) throw RedisError(*refused);
    return connection;
}

void Connection::fail(std::string_view during, std::string_view reason) {
    context_.reset();  // a connection that failed mid-stream cannot tell where its replies are
    unanswered_.clear();
    written_ = 0;
    throw RedisError(
        fmt::format("lost connection to {} during {}: {}", describe(endpoint_), during, reason));
}

void Connection::wait(Wait what) {
    if (!wait_until(context_->transport->fd(), what, Clock::now() + context_->timeout))
        throw TransportError("timed out");
}

void Connection::append(std::span<const std::string_view> args) {
    if (cluster_) return cluster_append(args);
    if (!context_) throw RedisError(fmt::format("connection to {} is closed", describe(endpoint_)));
    if (!origin_.sentinel) {
        append_command(context_->output, args);
        return;
    }
    std::string encoded;
    append_command(encoded, args);
    context_->output += encoded;
    unanswered_.push_back(std::move(encoded));
}

bool Connection::closed_while_idle() {
    pollfd watched{context_->transport->fd(), POLLIN, 0};
    if (::poll(&watched, 1, 0) <= 0) return false;
    try {
        char buffer[512];
        auto io = context_->transport->read(buffer, sizeof buffer);
        // Bytes nobody asked for: not a closed connection; the reader has them.
        if (io.bytes > 0) context_->reader.feed(buffer, io.bytes);
        return false;
    } catch (const TransportError&) {
        return true;
    }
}

void Connection::reopen(std::string_view why) {
    log::warn(fmt::format("{}: {}; asking the sentinels for the master", describe(endpoint_), why));
    auto command_timeout = context_ ? context_->timeout : timeouts_.command;
    auto fresh = connect_to_master(origin_, timeouts_);
    context_ = std::move(fresh.context_);
    endpoint_ = fresh.endpoint_;
    plain_server_ = fresh.plain_server_;
    context_->timeout = command_timeout;
    for (const auto& command : unanswered_)
        context_->output += command;
    written_ = 0;
    ++reopened_;
    log::info(fmt::format("now talking to {}", describe(endpoint_)));
}

void Connection::flush() {
    auto& output = context_->output;
    std::size_t sent = 0;
    while (sent < output.size()) {
        auto io = context_->transport->write(output.data() + sent, output.size() - sent);
        if (io.bytes == 0)
            wait(io.wait);
        else
            sent += io.bytes;
    }
    output.clear();
}

Reply Connection::read_reply() {
    if (cluster_) return cluster_read_reply();
    if (!context_) throw RedisError(fmt::format("connection to {} is closed", describe(endpoint_)));
    if (!origin_.sentinel) return receive();
    for (int resent = 0;; ++resent) {
        // Nothing is on its way and the server has closed the connection (a master killed, or
        // demoted: sentinels make it drop its clients): the commands not sent yet go to the
        // master the sentinels name now.
        if (written_ == 0 && !unanswered_.empty() && closed_while_idle())
            reopen("the server closed the connection");
        written_ = unanswered_.size();
        auto reply = receive();
        if (is_failover_error(reply) && resent < max_failover_resends) {
            // Refused by a server that is no longer master: that command did not run, and
            // those sent after it were refused too (writes) or ran as reads. All of them go
            // to the new master, in order; their replies here are dropped.
            for (std::size_t i = 1; i < written_; ++i)
                (void)receive();
            reopen(printable(reply.text, 200));
            continue;
        }
        unanswered_.pop_front();
        --written_;
        if (is_failover_error(reply)) {
            context_.reset();
            unanswered_.clear();
            written_ = 0;
            throw RedisError(fmt::format("{} is not the master: {}", describe(endpoint_),
                                         printable(reply.text, 200)));
        }
        if (!first_answered_by_) first_answered_by_ = reopened_;
        return reply;
    }
}

Reply Connection::receive() {
    // As hiredis did: every appended command goes out before the first reply is read.
    try {
        flush();
    } catch (const TransportError& error) {
        fail("sending a command", error.what());
    }
    try {
        char buffer[16 * 1024];
        for (;;) {
            if (auto reply = context_->reader.next()) return std::move(*reply);
            auto io = context_->transport->read(buffer, sizeof buffer);
            if (io.bytes == 0)
                wait(io.wait);
            else
                context_->reader.feed(buffer, io.bytes);
        }
    } catch (const TransportError& error) {
        fail("reading a reply", error.what());
    }
}

Reply Connection::command(std::span<const std::string_view> args) {
    append(args);
    return read_reply();
}

Reply Connection::call(std::initializer_list<std::string_view> args) {
    auto reply = command(args);
    if (reply.is_error())
        throw RedisError(fmt::format("{} failed on {}: {}", args.size() ? *args.begin() : "command",
                                     describe(endpoint_), printable(reply.text, 200)));
    return reply;
}

Reply Connection::run_script(const ScriptSource& script, std::span<const std::string_view> keys,
                             std::span<const std::string_view> args) {
    append_script(script, keys, args);
    auto replies = read_script_replies();
    return std::move(replies.front());
}

void Connection::append_script(const ScriptSource& script, std::span<const std::string_view> keys,
                               std::span<const std::string_view> args) {
    PendingScript pending{&script, script_argv(script, functions_, plain_server_, keys, args)};
    std::vector<std::string_view> view(pending.argv.begin(), pending.argv.end());
    append(view);
    pending_scripts_.push_back(std::move(pending));
}

std::vector<Reply> Connection::read_script_replies() {
    auto pending = std::move(pending_scripts_);
    pending_scripts_.clear();
    std::vector<Reply> replies;
    replies.reserve(pending.size());
    std::vector<std::pair<std::size_t, ScriptMiss>> missed;
    auto read_one = [&](std::size_t i) {
        auto reply = read_reply();
        auto miss = script_miss(pending[i].argv[0], reply);
        if (miss != ScriptMiss::none) missed.emplace_back(i, miss);
        return reply;
    };
    for (std::size_t i = 0; i < pending.size(); ++i)
        replies.push_back(read_one(i));
    // Calls that did not run (redis/script.hpp says why) go again, in their order, which keeps
    // the order of effects: the server lost its script cache (SCRIPT FLUSH, restart) or its
    // library (FUNCTION FLUSH, restart, a new cluster master), and every later call of the
    // scripts lost failed the same way. The library is loaded first (FUNCTION LOAD). A call
    // going as EVALSHA goes as EVAL with its text the first time per script, which caches it
    // for the EVALSHAs behind it in the same pipeline: one copy of a 17 KB text per script, not
    // one per call (500 per page of a dlq export).
    // Lost again between the load and the calls after it (another client's FLUSH in that
    // instant): those calls did not run; they go again, and the third time each with its text
    // (EVAL), which cannot meet NOSCRIPT. Only then, or when a call refused at maxmemory goes
    // as EVALSHA behind a later one that ran, can a call run after a later call of another.
    for (int round = 0; !missed.empty(); ++round) {
        auto calls = std::exchange(missed, {});
        bool last = round >= 2;
        bool load = false;
        for (auto [i, miss] : calls) {
            if (miss == ScriptMiss::no_functions && functions_) {
                functions_ = false;
                log::debug(fmt::format("{} runs no functions ({}): the scripts go as EVALSHA",
                                       describe(endpoint_), printable(replies[i].text, 200)));
            }
            load = load || miss == ScriptMiss::library;
        }
        if (load && functions_ && !last)
            load_library(*pending[calls.front().first].script, pending, calls);
        std::set<const ScriptSource*> text_sent;
        for (auto [i, miss] : calls) {
            auto& call = pending[i];
            auto form = ScriptForm::evalsha;
            if (last)
                form = ScriptForm::eval;
            else if (functions_ && miss == ScriptMiss::library)
                form = ScriptForm::fcall;
            if (form == ScriptForm::evalsha && text_sent.insert(call.script).second)
                form = ScriptForm::eval;
            set_script_form(call.argv, *call.script, form, plain_server_);
            std::vector<std::string_view> view(call.argv.begin(), call.argv.end());
            append(view);
        }
        for (auto [i, miss] : calls)
            replies[i] = read_one(i);
    }
    return replies;
}

void Connection::load_library(const ScriptSource& script, const std::vector<PendingScript>& pending,
                              const std::vector<std::pair<std::size_t, ScriptMiss>>& calls) {
    // Every master that answered "not found" gets the library (a single server: this one). A
    // cluster's master is found by the call's first key, as the call itself was.
    Reply reply;
    if (!cluster_) {
        reply = command({"FUNCTION", "LOAD", script.library});
    } else {
        std::set<std::size_t> nodes;
        for (auto [i, miss] : calls) {
            if (miss != ScriptMiss::library) continue;
            const auto& argv = pending[i].argv;
            std::vector<std::string_view> view(argv.begin(), argv.end());
            if (auto key = routing_key(view))
                if (auto master = cluster_->map.master_of(key_slot(*key)))
                    nodes.insert(cluster_->node_index(*master));
        }
        try {
            for (auto node : nodes) {
                reply = cluster_connection(node).command({"FUNCTION", "LOAD", script.library});
                if (!library_loaded(reply)) break;
            }
        } catch (const RedisError& error) {
            cluster_fail(error);
        }
    }
    if (library_loaded(reply)) return;
    functions_ = false;
    log::debug(fmt::format("FUNCTION LOAD refused by {} ({}): the scripts go as EVALSHA",
                           describe(endpoint_), printable(reply.text, 200)));
}

void Connection::set_command_timeout(std::chrono::milliseconds timeout) {
    if (cluster_) {
        cluster_->command_timeout = timeout;
        for (auto& node : cluster_->nodes)
            if (node.connection) node.connection->set_command_timeout(timeout);
    }
    if (context_) context_->timeout = timeout;
}

void Connection::begin_durable_writes() {
    first_answered_by_.reset();
    if (cluster_) cluster_->written.clear();
}

long long Connection::wait_for_replicas(long long replicas, std::chrono::milliseconds timeout) {
    if (cluster_) {
        // Each master vouches for its own writes: the count is the smallest any of them got.
        // Every reply has been read, so no node has a command in flight.
        auto written = std::exchange(cluster_->written, {});
        if (written.empty()) {
            cluster_->entries.push_back({});
            written.insert(cluster_node_for(cluster_->first_sequence));
            cluster_->entries.pop_back();
        }
        std::optional<long long> least;
        try {
            for (auto node : written) {
                auto got = cluster_connection(node).wait_for_replicas(replicas, timeout);
                least = least ? std::min(*least, got) : got;
            }
        } catch (const RedisError& error) {
            cluster_fail(error);
        }
        return *least;
    }
    if (!context_) throw RedisError(fmt::format("connection to {} is closed", describe(endpoint_)));
    // The master whose acknowledgements WAIT is to vouch for: the one that answered the first
    // write, or (none answered yet) the one talked to now.
    auto vouched = first_answered_by_.value_or(reopened_);
    // The reply comes when the replicas answer or the timeout passes; a margin for the rest.
    constexpr std::chrono::milliseconds margin{5000};
    constexpr std::chrono::milliseconds forever{std::chrono::hours(24 * 365)};
    auto saved = context_->timeout;
    context_->timeout = timeout.count() == 0 ? forever : timeout + margin;
    auto count = std::to_string(replicas);
    auto ms = std::to_string(timeout.count());
    auto reply = command({"WAIT", count, ms});
    if (context_) context_->timeout = saved;
    first_answered_by_.reset();
    if (reopened_ != vouched)
        throw RedisError(fmt::format(
            "the master changed before {} replica(s) acknowledged the writes; {} cannot vouch "
            "for what the old master acknowledged",
            replicas, describe(endpoint_)));
    if (reply.is_error())
        throw RedisError(
            fmt::format("WAIT failed on {}: {}", describe(endpoint_), printable(reply.text, 200)));
    return reply.as_integer();
}

std::string Connection::transport_security() const {
    if (cluster_)
        for (const auto& node : cluster_->nodes)
            if (node.connection && node.connection->context_)
                return node.connection->transport_security();
    return context_ ? context_->transport->security() : "closed";
}

std::vector<Connection::ClusterMaster> Connection::cluster_masters() const {
    std::vector<ClusterMaster> masters;
    if (!cluster_) return masters;
    for (const auto& address : cluster_->map.masters)
        masters.push_back({address, 0});
    for (auto owner : cluster_->map.owner)
        if (owner >= 0) ++masters[static_cast<std::size_t>(owner)].slots;
    return masters;
}

std::optional<HostPort> Connection::cluster_master_of(std::string_view key) const {
    if (!cluster_) return std::nullopt;
    if (auto master = cluster_->map.master_of(key_slot(key))) return *master;
    return std::nullopt;
}

// --- cluster -------------------------------------------------------------------------------------

Connection Connection::open_cluster(const Endpoint& endpoint, Timeouts timeouts,
                                    std::optional<Connection> seed) {
    Connection connection(nullptr, endpoint);
    connection.cluster_ = std::make_unique<Cluster>();
    auto& cluster = *connection.cluster_;
    cluster.origin = endpoint;
    cluster.timeouts = timeouts;
    cluster.command_timeout = timeouts.command;
    if (seed) {
        HostPort asked{endpoint.host, endpoint.port};
        auto reply = seed->command({"CLUSTER", "SLOTS"});
        if (reply.is_error())
            throw RedisError(fmt::format("CLUSTER SLOTS failed on {}: {}", describe(endpoint),
                                         printable(reply.text, 200)));
        cluster.map = parse_cluster_slots(reply, asked);
        // The seed is kept when it is one of the masters: the first command may well go there.
        if (std::find(cluster.map.masters.begin(), cluster.map.masters.end(), asked) !=
            cluster.map.masters.end())
            cluster.nodes[cluster.node_index(asked)].connection = std::move(seed);
    } else {
        connection.refresh_slot_map("");
    }
    if (cluster.map.masters.empty())
        throw RedisError(
            fmt::format("the cluster at {} serves no slots yet (CLUSTER SLOTS is "
                        "empty: is it created?)",
                        describe(endpoint)));
    return connection;
}

void Connection::refresh_slot_map(std::string_view why) {
    auto& cluster = *cluster_;
    if (!why.empty())
        log::debug(fmt::format("{}: {}; reading the slot map again", cluster.name(), why));
    // Who to ask: the masters connected and idle (their next reply is this one's), then every
    // master the map knows, then the seeds.
    std::vector<HostPort> order;
    auto add = [&](const HostPort& address) {
        if (std::find(order.begin(), order.end(), address) == order.end()) order.push_back(address);
    };
    for (const auto& node : cluster.nodes)
        if (node.connection && node.connection->context_ && node.owners.empty()) add(node.address);
    for (const auto& master : cluster.map.masters)
        add(master);
    for (const auto& seed : cluster.origin.cluster->seeds)
        add(seed);

    auto deadline = Clock::now() + cluster.timeouts.failover;
    std::string errors;
    std::optional<SlotMap> partial;
    for (const auto& address : order) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) break;
        try {
            Reply reply;
            auto index = cluster.node_index(address);
            auto& node = cluster.nodes[index];
            if (node.connection && node.connection->context_ && node.owners.empty()) {
                reply = node.connection->command({"CLUSTER", "SLOTS"});
            } else {
                auto timeout = std::min(cluster.timeouts.connect, left);
                auto probe = open_server(cluster_node(cluster.origin, address), {timeout, timeout});
                reply = probe.command({"CLUSTER", "SLOTS"});
            }
            if (reply.is_error()) throw RedisError(printable(reply.text, 200));
            auto map = parse_cluster_slots(reply, address);
            // A node cut off from the others may still answer with what it knew; a map with
            // unserved slots is taken only when nobody knows better.
            if (map.unserved() > 0) {
                errors += fmt::format("{}{}: {} slots unserved", errors.empty() ? "" : "; ",
                                      host_port(address.host, address.port), map.unserved());
                if (!map.masters.empty() && (!partial || map.unserved() < partial->unserved()))
                    partial = std::move(map);
                continue;
            }
            cluster.map = std::move(map);
            return;
        } catch (const RedisError& error) {
            errors += fmt::format("{}{}", errors.empty() ? "" : "; ", error.what());
        }
    }
    if (partial) {
        cluster.map = std::move(*partial);
        return;
    }
    if (!cluster.map.masters.empty() && !why.empty()) return;  // keep what we knew
    throw RedisError(
        fmt::format("cannot read the slot map of the cluster at {}: {}", cluster.name(), errors));
}

std::size_t Connection::cluster_node_for(std::size_t sequence) {
    auto& cluster = *cluster_;
    auto& entry = cluster.entry(sequence);
    if (entry.ask) return cluster.node_index(*entry.ask);
    std::vector<std::string_view> view(entry.argv.begin(), entry.argv.end());
    if (auto key = routing_key(view))
        if (auto master = cluster.map.master_of(key_slot(*key))) return cluster.node_index(*master);
    // No key (TIME, INFO, WAIT, SCRIPT), or a slot nobody serves now (it answers MOVED or
    // CLUSTERDOWN): any master, one already connected first.
    for (std::size_t i = 0; i < cluster.nodes.size(); ++i)
        if (cluster.nodes[i].connection && cluster.nodes[i].connection->context_ &&
            std::find(cluster.map.masters.begin(), cluster.map.masters.end(),
                      cluster.nodes[i].address) != cluster.map.masters.end())
            return i;
    if (!cluster.map.masters.empty()) return cluster.node_index(cluster.map.masters.front());
    return cluster.node_index(cluster.origin.cluster->seeds.front());
}

Connection& Connection::cluster_connection(std::size_t index) {
    auto& cluster = *cluster_;
    auto& node = cluster.nodes[index];
    // A connection the server closed while nothing was asked of it (a master killed or
    // restarted): nothing was lost; open a new one.
    if (node.connection && (!node.connection->context_ ||
                            (node.owners.empty() && node.connection->closed_while_idle())))
        node.connection.reset();
    if (!node.connection) {
        node.connection = open_server(cluster_node(cluster.origin, node.address),
                                      {cluster.timeouts.connect, cluster.command_timeout});
        node.owners.clear();
    }
    return *node.connection;
}

void Connection::cluster_dispatch(std::size_t sequence) {
    auto& cluster = *cluster_;
    auto deadline = Clock::now() + cluster.timeouts.failover;
    for (int attempt = 0;; ++attempt) {
        auto index = cluster_node_for(sequence);
        auto& entry = cluster.entry(sequence);
        try {
            auto& connection = cluster_connection(index);
            auto& node = cluster.nodes[index];
            if (entry.ask) {
                // The slot is migrating to that node: ASKING lets this one command run there.
                connection.append({"ASKING"});
                node.owners.push_back(discarded);
                entry.ask.reset();
            }
            std::vector<std::string_view> view(entry.argv.begin(), entry.argv.end());
            connection.append(view);
            node.owners.push_back(sequence);
            entry.node = index;
            return;
        } catch (const RedisError& error) {
            // Nothing was written to that node: its master is gone (killed, restarting). The
            // cluster promotes a replica within its node timeout; the map then names it.
            auto wait = cluster_retry_delay(attempt);
            if (Clock::now() + wait >= deadline)
                throw RedisError(fmt::format("no master of the cluster at {} within {} ms: {}",
                                             cluster.name(), cluster.timeouts.failover.count(),
                                             error.what()));
            std::this_thread::sleep_for(wait);
            entry.ask.reset();
            try {
                refresh_slot_map(error.what());
            } catch (const RedisError&) {
                // tried again after the next wait
            }
        }
    }
}

void Connection::cluster_read_from(std::size_t index) {
    auto& cluster = *cluster_;
    auto& node = cluster.nodes[index];
    if (!node.connection || node.owners.empty())
        throw RedisError(fmt::format("{}: no reply is due from {}", cluster.name(),
                                     host_port(node.address.host, node.address.port)));
    auto reply = node.connection->read_reply();
    auto owner = node.owners.front();
    node.owners.pop_front();
    if (owner == discarded) return;  // ASKING's +OK
    auto& entry = cluster.entry(owner);
    auto redirect = parse_redirect(reply, node.address);
    if (redirect.kind == Redirect::Kind::none) {
        // WAIT (--replicas) asks the nodes that ran a keyed command, not those that redirected
        // it: a demoted old master answers MOVED, and WAIT there is an error (a replica).
        std::vector<std::string_view> view(entry.argv.begin(), entry.argv.end());
        if (routing_key(view)) cluster.written.insert(index);
    }
    if (redirect.kind == Redirect::Kind::none || entry.redirects >= max_redirects) {
        entry.reply = std::move(reply);
        return;
    }
    ++entry.redirects;
    switch (redirect.kind) {
        case Redirect::Kind::moved: {
            // The map is stale (a migration finished, a failover): read it whole once, not per
            // slot, then trust the reply for this slot in any case.
            auto known = cluster.map.master_of(redirect.slot);
            if (!known || *known != redirect.target) {
                try {
                    refresh_slot_map(printable(reply.text, 200));
                } catch (const RedisError&) {
                    // the redirect alone is enough to go on
                }
            }
            cluster.map.assign(redirect.slot, redirect.target);
            break;
        }
        case Redirect::Kind::ask:
            entry.ask = redirect.target;
            break;
        case Redirect::Kind::try_again:
        case Redirect::Kind::cluster_down: {
            // A slot in migration (a multi-key command), or a cluster that lost a master and has
            // not promoted a replica yet: wait, within the failover budget, and send again.
            auto now = Clock::now();
            if (!entry.waiting_since) entry.waiting_since = now;
            auto wait = cluster_retry_delay(entry.redirects - 1);
            if (now + wait - *entry.waiting_since >= cluster.timeouts.failover) {
                entry.reply = std::move(reply);
                return;
            }
            std::this_thread::sleep_for(wait);
            if (redirect.kind == Redirect::Kind::cluster_down) {
                try {
                    refresh_slot_map(printable(reply.text, 200));
                } catch (const RedisError&) {
                }
            }
            break;
        }
        case Redirect::Kind::none:
            break;
    }
    cluster_dispatch(owner);
}

void Connection::cluster_append(std::span<const std::string_view> args) {
    auto& cluster = *cluster_;
    Cluster::Entry entry;
    entry.argv.assign(args.begin(), args.end());
    cluster.entries.push_back(std::move(entry));
    try {
        cluster_dispatch(cluster.first_sequence + cluster.entries.size() - 1);
    } catch (const RedisError& error) {
        cluster_fail(error);
    }
}

Reply Connection::cluster_read_reply() {
    auto& cluster = *cluster_;
    if (cluster.entries.empty())
        throw RedisError(fmt::format("{}: no command awaits a reply", cluster.name()));
    try {
        // Every node's commands go out before the first reply is read: the nodes work at once.
        for (auto& node : cluster.nodes)
            if (node.connection && node.connection->context_ &&
                !node.connection->context_->output.empty()) {
                try {
                    node.connection->flush();
                } catch (const TransportError& error) {
                    node.connection->fail("sending a command", error.what());
                }
            }
        auto& entry = cluster.entries.front();
        while (!entry.reply)
            cluster_read_from(*entry.node);
        auto reply = std::move(*entry.reply);
        cluster.entries.pop_front();
        ++cluster.first_sequence;
        return reply;
    } catch (const RedisError& error) {
        cluster_fail(error);
    }
}

void Connection::cluster_fail(const RedisError& error) {
    // As a single connection that failed: nobody can tell which replies are still to come on
    // the other nodes, so every node's connection goes; the slot map stays. A later command
    // opens what it needs.
    auto& cluster = *cluster_;
    cluster.first_sequence += cluster.entries.size();
    cluster.entries.clear();
    for (auto& node : cluster.nodes) {
        node.connection.reset();
        node.owners.clear();
    }
    throw RedisError(error.what());
}

Connection::~Connection() {
    // A clean goodbye (TLS close_notify) when the connection is still in a known state.
    if (context_) context_->transport->shutdown();
}

}  // namespace workq::redis
