#include "redis/async_connection.hpp"

#include <fmt/format.h>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <map>

#include "redis/cluster.hpp"
#include "redis/resp.hpp"
#include "redis/sentinel.hpp"
#include "redis/transport.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"
#include "util/names.hpp"

namespace workq::redis {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct AsyncConnection::Impl {
    explicit Impl(asio::io_context& io) : socket(io) {}
    ~Impl() { unwatch(); }  // before the transport closes the descriptor

    std::optional<Connector> connector;    // while the socket connects
    std::unique_ptr<Transport> transport;  // once it has
    bool handshaken = false;               // commands may go out
    ReplyReader reader;
    std::string output;       // commands not yet written
    std::size_t written = 0;  // bytes of `output` already written

    struct Pending {
        ReplyHandler handler;
        Clock::time_point deadline;
    };
    std::deque<Pending> pending;  // one per command sent, in order: replies come in that order

    // Waits on the descriptor the connector or the transport owns; never closes it.
    asio::posix::stream_descriptor socket;
    int watched_fd = -1;
    unsigned generation = 0;  // waits armed for an earlier descriptor find it changed
    bool read_armed = false, write_armed = false;
    bool io_posted = false;
    bool ended = false;  // the transport failed; fail() is on its way

    void watch(int fd) {
        if (fd == watched_fd) return;
        unwatch();
        socket.assign(fd);
        watched_fd = fd;
    }
    // Cancels the waits and lets go of the descriptor: their handlers, already queued or not,
    // see the generation changed and do nothing.
    void unwatch() {
        if (watched_fd < 0) return;
        boost::system::error_code ignored;
        socket.cancel(ignored);
        (void)socket.release();
        watched_fd = -1;
        ++generation;
        read_armed = write_armed = false;
    }
    void close(bool goodbye) {
        unwatch();
        if (transport && goodbye) transport->shutdown();
        transport.reset();
        connector.reset();
    }
};

struct AsyncConnection::Cluster {
    std::chrono::milliseconds connect_timeout{5000};
    SlotMap map;
    std::vector<HostPort> seeds;  // in the order to try: the URL's, then masters known before
    // The masters talked to, each over its own connection (also while it connects).
    std::vector<std::pair<HostPort, std::shared_ptr<AsyncConnection>>> nodes;
    // SCRIPT LOAD and FUNCTION LOAD commands: each node gets them first.
    std::vector<std::vector<std::string>> scripts;
    std::vector<std::function<void()>> waiting;  // commands given before the map was read
    std::size_t in_flight = 0;
    bool refreshing = false;
    // Commands waiting out a TRYAGAIN or CLUSTERDOWN, by number: held here, not only by their
    // timer, so that a router that fails meanwhile answers them (nullopt) at once, like its
    // nodes' pending commands. The owner (a worker) may drop the router before the timer
    // fires; a settle whose handler was never called would be lost.
    std::map<std::uint64_t, ReplyHandler> retrying;
    std::uint64_t next_retry = 0;

    ~Cluster() {
        for (auto& node : nodes)
            node.second->close();
    }
};

namespace {
// The write buffer kept between bursts; a larger one is let go once written.
constexpr std::size_t output_kept_capacity = 64 * 1024;

bool same_word(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) ==
                      std::toupper(static_cast<unsigned char>(y));
           });
}

// The masters a cluster named last, per cluster (its seeds, as the URL gave them): a worker
// whose seed was the master that died reconnects through the others. One thread per process.
std::vector<HostPort>& known_masters(const Endpoint& endpoint) {
    static std::vector<std::pair<std::string, std::vector<HostPort>>> known;
    auto name = describe(endpoint);
    for (auto& [seeds, masters] : known)
        if (seeds == name) return masters;
    return known.emplace_back(name, std::vector<HostPort>{}).second;
}

}  // namespace

AsyncConnection::AsyncConnection(asio::io_context& io, Endpoint endpoint)
    : io_(io),
      endpoint_(std::move(endpoint)),
      impl_(std::make_unique<Impl>(io)),
      deadline_timer_(io) {}

// Pending handlers are dropped without a call: their owner is going away.
AsyncConnection::~AsyncConnection() {
    impl_->close(state_ == State::ready);
}

std::string AsyncConnection::transport_security() const {
    if (cluster_)
        for (const auto& node : cluster_->nodes)
            if (node.second->ready()) return node.second->transport_security();
    return impl_ && impl_->transport ? impl_->transport->security() : "closed";
}

std::size_t AsyncConnection::in_flight() const {
    if (cluster_) return cluster_->in_flight + cluster_->retrying.size();
    return impl_->pending.size();
}

std::shared_ptr<AsyncConnection> AsyncConnection::open(asio::io_context& io,
                                                       const Endpoint& endpoint,
                                                       std::chrono::milliseconds connect_timeout,
                                                       ReadyHandler on_ready, LostHandler on_lost,
                                                       bool ask_cluster_mode) {
    std::shared_ptr<AsyncConnection> connection(new AsyncConnection(io, endpoint));
    connection->on_ready_ = std::move(on_ready);
    connection->on_lost_ = std::move(on_lost);
    connection->start(connect_timeout, ask_cluster_mode);
    return connection;
}

void AsyncConnection::start(std::chrono::milliseconds connect_timeout, bool ask_cluster_mode) {
    if (endpoint_.cluster) return cluster_start(connect_timeout);
    // A Sentinel endpoint's address comes from the sentinels first; the login below is queued
    // meanwhile and goes out once the socket is connected.
    bool find_master = endpoint_.sentinel && endpoint_.host.empty();
    if (find_master) {
        master_search_ = find_master_async(
            io_, endpoint_,
            [self = weak_from_this()](std::optional<HostPort> master, const std::string& error) {
                auto connection = self.lock();
                if (!connection || connection->state_ != State::connecting) return;
                connection->master_search_.reset();
                if (!master) {
                    connection->fail(error);
                    return;
                }
                connection->endpoint_.host = master->host;
                connection->endpoint_.port = master->port;
                try {
                    connection->impl_->connector.emplace(connection->endpoint_);
                } catch (const TransportError& failure) {
                    connection->fail(failure.what());
                    return;
                }
                connection->schedule_io();
            });
    } else {
        try {
            impl_->connector.emplace(endpoint_);
        } catch (const TransportError& error) {
            fail_later(error.what());
            return;
        }
    }
    // One deadline for finding the master, the connect, the TLS handshake and the login.
    deadline_timer_.expires_after(connect_timeout);
    deadline_timer_.async_wait([self = weak_from_this()](auto error) {
        auto connection = self.lock();
        if (error || !connection || connection->state_ != State::connecting) return;
        connection->fail("timed out connecting");
    });

    auto login_failed = [self = weak_from_this()](const std::string& what,
                                                  const std::optional<Reply>& reply) {
        auto connection = self.lock();
        if (!connection || connection->state_ == State::failed) return true;
        if (!reply) return true;  // fail() reports the connection's own reason
        if (reply->is_error()) {
            connection->fail(fmt::format("{}: {}", what, printable(reply->text, 200)));
            return true;
        }
        return false;
    };
    if (!endpoint_.password.empty()) {
        std::vector<std::string> auth{"AUTH"};
        if (!endpoint_.username.empty()) auth.push_back(endpoint_.username);
        auth.push_back(endpoint_.password);
        send(
            std::move(auth), [login_failed](auto reply) { login_failed("cannot log in", reply); },
            connect_timeout);
    }
    if (endpoint_.database != 0)
        send(
            {"SELECT", std::to_string(endpoint_.database)},
            [login_failed, db = endpoint_.database](auto reply) {
                login_failed(fmt::format("cannot select database {}", db), reply);
            },
            connect_timeout);
    if (endpoint_.sentinel)
        // Before anything of the owner's: the sentinels' word lags behind a failover, and an
        // old master restarted claims to be master until they reconfigure it.
        send(
            {"ROLE"},
            [self = weak_from_this(), login_failed](auto reply) {
                if (login_failed("the server refused ROLE", reply)) return;
                auto connection = self.lock();
                if (!connection || connection->state_ != State::connecting) return;
                if (auto role = role_of(*reply); role != "master")
                    connection->fail(not_master_reason(connection->endpoint_, role));
            },
            connect_timeout);
    if (ask_cluster_mode)
        // Refused (an ACL) or unanswered: not known, and the scripts keep their slot guard.
        send(
            {"INFO", "cluster"},
            [self = weak_from_this()](auto reply) {
                auto connection = self.lock();
                if (connection && reply) connection->plain_server_ = cluster_disabled(*reply);
            },
            connect_timeout);
    send(
        {"PING"},
        [self = weak_from_this(), login_failed](auto reply) {
            if (login_failed("the server refused PING", reply)) return;
            auto connection = self.lock();
            if (!connection || connection->state_ != State::connecting) return;
            connection->state_ = State::ready;
            connection->deadline_timer_.cancel();
            if (connection->on_ready_) std::exchange(connection->on_ready_, nullptr)(std::nullopt);
            connection->watch_deadlines();
        },
        connect_timeout);
}

void AsyncConnection::send(const std::vector<std::string>& args, ReplyHandler handler,
                           std::chrono::milliseconds deadline) {
    if (state_ == State::failed) {
        asio::post(io_, [handler = std::move(handler)] { handler(std::nullopt); });
        return;
    }
    append_command(impl_->output, std::span<const std::string>(args));
    impl_->pending.push_back({std::move(handler), Clock::now() + deadline});
    schedule_io();
    if (state_ == State::ready && impl_->pending.size() == 1) watch_deadlines();
}

// The commands sent meanwhile go out together, from the io_context: one write (one TLS
// record) for a batch, and a failure found while writing never runs the owner's on_lost inside
// its own call to command().
void AsyncConnection::schedule_io() {
    if (impl_->io_posted) return;
    impl_->io_posted = true;
    asio::post(io_, [self = weak_from_this()] {
        auto connection = self.lock();
        if (!connection) return;
        connection->impl_->io_posted = false;
        connection->do_io();
    });
}

void AsyncConnection::arm(Wait wait) {
    if (wait == Wait::none || state_ == State::failed) return;
    bool readable = wait == Wait::readable;
    bool& armed = readable ? impl_->read_armed : impl_->write_armed;
    if (armed) return;
    armed = true;
    impl_->socket.async_wait(
        readable ? asio::posix::descriptor_base::wait_read
                 : asio::posix::descriptor_base::wait_write,
        [self = weak_from_this(), generation = impl_->generation,
         readable](boost::system::error_code error) {
            // The lock keeps the connection alive through do_io(), whatever the owner does in
            // on_lost.
            auto connection = self.lock();
            if (!connection || connection->impl_->generation != generation) return;
            (readable ? connection->impl_->read_armed : connection->impl_->write_armed) = false;
            if (error) {
                connection->fail(error.message());
                return;
            }
            connection->do_io();
        });
}

// Connects, shakes hands, writes what is queued and reads what came, as far as each goes
// without blocking; then waits for the socket to allow more. Replies go to their handlers
// through the io_context.
void AsyncConnection::do_io() {
    if (state_ == State::failed || impl_->ended) return;
    auto& impl = *impl_;
    if (!impl.connector && !impl.transport) return;  // the sentinels have not answered yet
    try {
        if (impl.connector) {
            // The connector closes a socket that failed and opens one for the next address,
            // which may well get the same number: let go of the old one before that.
            impl.unwatch();
            auto wait = impl.connector->step();
            impl.watch(impl.connector->fd());
            if (wait != Wait::none) return arm(wait);
            impl.transport = impl.connector->finish();
            impl.connector.reset();
        }
        if (!impl.handshaken) {
            auto wait = impl.transport->handshake();
            if (wait != Wait::none) return arm(wait);
            impl.handshaken = true;
        }

        auto write_wait = Wait::none;
        while (impl.written < impl.output.size()) {
            auto io = impl.transport->write(impl.output.data() + impl.written,
                                            impl.output.size() - impl.written);
            if (io.bytes == 0) {
                write_wait = io.wait;
                break;
            }
            impl.written += io.bytes;
        }
        if (impl.written == impl.output.size()) {
            // A burst (the scripts loaded on connecting: ~1 MiB) would otherwise keep its
            // buffer for the connection's life: an idle worker's largest piece of memory.
            if (impl.output.capacity() > output_kept_capacity)
                std::string().swap(impl.output);
            else
                impl.output.clear();
            impl.written = 0;
        }

        // Always reading, even with nothing in flight: a server that closes the connection
        // is noticed at once, not at the next command. The replies that came before the end
        // still go to their commands (an error a server sends before it hangs up, say).
        // Over a plain socket, no read that can only fail with EAGAIN (a system call each, on
        // every command sent and every reply): a wait for readability already armed brings
        // do_io back once the server has written (or closed), and a read that returned less
        // than asked took all there was. Either way the wait, not another read, says when more
        // has come; arming it (EPOLL_CTL_MOD) reports data that came meanwhile.
        bool drains = impl.transport->short_read_drains();
        auto read_wait = drains && impl.read_armed ? Wait::readable : Wait::none;
        std::optional<std::string> ended;
        char buffer[16 * 1024];
        while (read_wait == Wait::none && !ended) {
            try {
                auto io = impl.transport->read(buffer, sizeof buffer);
                if (io.bytes == 0) {
                    read_wait = io.wait;
                } else {
                    impl.reader.feed(buffer, io.bytes);
                    if (drains && io.bytes < sizeof buffer) read_wait = Wait::readable;
                }
            } catch (const TransportError& error) {
                ended = error.what();
            }
        }
        while (auto reply = impl.reader.next()) {
            if (impl.pending.empty()) throw TransportError("the server sent a reply to no command");
            // Through Sentinel, a server that refuses a command as no longer master (READONLY,
            // UNBLOCKED: it did not run) ends the connection: the owner's reconnect asks the
            // sentinels again, and what it had sent goes to the new master.
            if (endpoint_.sentinel && is_failover_error(*reply))
                throw TransportError("no longer the master: " + printable(reply->text, 200));
            auto handler = std::move(impl.pending.front().handler);
            impl.pending.pop_front();
            asio::post(io_, [handler = std::move(handler), reply = std::move(*reply)]() mutable {
                handler(std::move(reply));
            });
        }
        if (ended) {
            // After the handlers of those replies, which may say more than "closed".
            impl.unwatch();
            impl.ended = true;
            fail_later(*ended);
            return;
        }
        arm(read_wait);
        arm(write_wait);
    } catch (const Error& error) {  // TransportError, or a TLS context that cannot be made
        fail(error.what());
    } catch (const boost::system::system_error& error) {  // the reactor refused the socket
        fail(error.what());
    }
}

void AsyncConnection::fail_later(const std::string& reason) {
    asio::post(io_, [self = weak_from_this(), reason] {
        if (auto connection = self.lock()) connection->fail(reason);
    });
}

void AsyncConnection::command(std::vector<std::string> args, ReplyHandler handler,
                              std::chrono::milliseconds deadline) {
    dispatch(args, std::move(handler), deadline);
}

void AsyncConnection::dispatch(const std::vector<std::string>& args, ReplyHandler handler,
                               std::chrono::milliseconds deadline) {
    if (!cluster_) return send(args, std::move(handler), deadline);
    if (args.size() >= 3 && ((same_word(args[0], "SCRIPT") && same_word(args[1], "LOAD")) ||
                             (same_word(args[0], "FUNCTION") && same_word(args[1], "LOAD")))) {
        // Every master needs the scripts (and the library) before its first EVALSHA (FCALL):
        // the ones open now get them here, those opened later first thing (cluster_child).
        auto& scripts = cluster_->scripts;
        if (std::find(scripts.begin(), scripts.end(), args) == scripts.end())
            scripts.push_back(args);
        bool answered = false;
        for (auto& node : cluster_->nodes) {
            if (node.second->failed()) continue;
            node.second->send(args, answered ? ReplyHandler([](auto) {}) : std::move(handler),
                              deadline);
            answered = true;
        }
        if (!answered) {
            Reply ok;
            ok.type = Reply::Type::status;
            ok.text = "OK";
            asio::post(io_, [handler = std::move(handler), ok]() mutable { handler(ok); });
        }
        return;
    }
    cluster_route(args, std::move(handler), deadline, 0, std::nullopt);
}

// --- cluster -------------------------------------------------------------------------------------

void AsyncConnection::cluster_start(std::chrono::milliseconds connect_timeout) {
    cluster_ = std::make_unique<Cluster>();
    cluster_->connect_timeout = connect_timeout;
    auto add = [&](const HostPort& address) {
        auto& seeds = cluster_->seeds;
        if (std::find(seeds.begin(), seeds.end(), address) == seeds.end()) seeds.push_back(address);
    };
    for (const auto& seed : endpoint_.cluster->seeds)
        add(seed);
    for (const auto& master : known_masters(endpoint_))
        add(master);
    asio::post(io_, [self = weak_from_this()] {
        if (auto connection = self.lock()) connection->cluster_try_seed(0, "");
    });
}

void AsyncConnection::cluster_try_seed(std::size_t index, std::string errors) {
    if (state_ != State::connecting) return;
    if (index >= cluster_->seeds.size())
        return fail(fmt::format("cannot read the slot map from any node: {}", errors));
    auto address = cluster_->seeds[index];
    auto note = [errors, address](const std::string& error) {
        return errors + (errors.empty() ? "" : "; ") + error;
    };
    auto probe = std::make_shared<std::shared_ptr<AsyncConnection>>();
    *probe = AsyncConnection::open(
        io_, redis::cluster_node(endpoint_, address), cluster_->connect_timeout,
        [self = weak_from_this(), probe, index, address, note](std::optional<std::string> error) {
            auto router = self.lock();
            if (!router || router->state_ != State::connecting) return;
            if (error) return router->cluster_try_seed(index + 1, note(*error));
            (*probe)->command({"CLUSTER", "SLOTS"}, [self, probe, index, address,
                                                     note](std::optional<Reply> reply) {
                auto owner = self.lock();
                auto seed = std::exchange(*probe, nullptr);
                if (!owner || owner->state_ != State::connecting) return;
                std::string problem;
                try {
                    if (!reply) throw RedisError("connection lost");
                    if (reply->is_error()) throw RedisError(printable(reply->text, 200));
                    owner->cluster_->map = parse_cluster_slots(*reply, address);
                    if (owner->cluster_->map.masters.empty())
                        throw RedisError("no slots served yet (is the cluster created?)");
                } catch (const RedisError& failure) {
                    problem = fmt::format("{}: {}", host_port(address.host, address.port),
                                          failure.what());
                }
                if (!problem.empty()) {
                    seed->close();
                    return owner->cluster_try_seed(index + 1, note(problem));
                }
                auto& cluster = *owner->cluster_;
                known_masters(owner->endpoint_) = cluster.map.masters;
                if (std::find(cluster.map.masters.begin(), cluster.map.masters.end(), address) !=
                    cluster.map.masters.end())
                    cluster.nodes.emplace_back(address, seed);  // a master: keep it
                else
                    seed->close();
                owner->state_ = State::ready;
                if (owner->on_ready_) std::exchange(owner->on_ready_, nullptr)(std::nullopt);
                for (auto& waiting : std::exchange(cluster.waiting, {}))
                    waiting();
            });
        },
        [self = weak_from_this()](const std::string& reason) {
            // A seed kept as a master's connection, lost later: the router goes with it.
            auto router = self.lock();
            if (router && router->state_ == State::ready) router->fail(reason);
        });
}

std::shared_ptr<AsyncConnection> AsyncConnection::cluster_child(const HostPort& address) {
    for (auto& node : cluster_->nodes)
        if (node.first == address && !node.second->failed()) return node.second;
    auto lost = [self = weak_from_this()](const std::string& reason) {
        auto router = self.lock();
        if (router && router->state_ == State::ready) router->fail(reason);
    };
    auto child = AsyncConnection::open(
        io_, redis::cluster_node(endpoint_, address), cluster_->connect_timeout,
        [lost](std::optional<std::string> error) {
            if (error) lost(*error);
        },
        lost);
    for (const auto& load : cluster_->scripts)
        child->send(
            load, [](auto) {}, cluster_->connect_timeout);
    for (auto& node : cluster_->nodes)
        if (node.first == address) {
            node.second = child;
            return child;
        }
    cluster_->nodes.emplace_back(address, child);
    return child;
}

void AsyncConnection::cluster_refresh_map() {
    if (cluster_->refreshing || cluster_->nodes.empty()) return;
    std::shared_ptr<AsyncConnection> asked;
    HostPort address;
    for (auto& node : cluster_->nodes)
        if (node.second->ready()) {
            asked = node.second;
            address = node.first;
            break;
        }
    if (!asked) return;
    cluster_->refreshing = true;
    asked->send(
        {"CLUSTER", "SLOTS"},
        [self = weak_from_this(), address](std::optional<Reply> reply) {
            auto router = self.lock();
            if (!router || !router->cluster_) return;
            router->cluster_->refreshing = false;
            if (!reply || reply->is_error()) return;
            try {
                auto map = parse_cluster_slots(*reply, address);
                // A node cut off from the others knows less than the redirects told us.
                if (map.unserved() > 0) return;
                router->cluster_->map = std::move(map);
                known_masters(router->endpoint_) = router->cluster_->map.masters;
            } catch (const RedisError&) {
            }
        },
        std::chrono::seconds(10));
}

void AsyncConnection::cluster_route(std::vector<std::string> args, ReplyHandler handler,
                                    std::chrono::milliseconds deadline, int redirects,
                                    std::optional<HostPort> ask) {
    if (state_ == State::failed) {
        asio::post(io_, [handler = std::move(handler)] { handler(std::nullopt); });
        return;
    }
    if (state_ == State::connecting) {
        auto argv = std::make_shared<std::vector<std::string>>(std::move(args));
        cluster_->waiting.push_back([self = weak_from_this(), argv, handler, deadline] {
            if (auto router = self.lock())
                router->cluster_route(std::move(*argv), handler, deadline, 0, std::nullopt);
        });
        return;
    }
    auto& cluster = *cluster_;
    HostPort target;
    if (ask) {
        target = *ask;
    } else {
        const HostPort* master = nullptr;
        if (auto key = routing_key(std::span<const std::string>(args)))
            master = cluster.map.master_of(key_slot(*key));
        if (!master) {
            // No key (TIME, PING), or a slot nobody serves now (it answers MOVED or
            // CLUSTERDOWN): a master connected already, else the first of the map.
            for (const auto& node : cluster.nodes)
                if (node.second->ready() &&
                    std::find(cluster.map.masters.begin(), cluster.map.masters.end(), node.first) !=
                        cluster.map.masters.end()) {
                    master = &node.first;
                    break;
                }
            if (!master) master = &cluster.map.masters.front();
        }
        target = *master;
    }
    auto child = cluster_child(target);
    if (ask)
        child->send(
            {"ASKING"}, [](auto) {}, deadline);
    auto argv = std::make_shared<std::vector<std::string>>(std::move(args));
    ++cluster.in_flight;
    child->send(
        *argv,
        [self = weak_from_this(), argv, handler = std::move(handler), deadline, redirects,
         target](std::optional<Reply> reply) mutable {
            auto router = self.lock();
            if (!router) return;
            --router->cluster_->in_flight;
            if (!reply || router->state_ != State::ready) return handler(std::move(reply));
            auto redirect = parse_redirect(*reply, target);
            if (redirect.kind == Redirect::Kind::none || redirects >= max_redirects)
                return handler(std::move(reply));
            switch (redirect.kind) {
                case Redirect::Kind::moved:
                    router->cluster_->map.assign(redirect.slot, redirect.target);
                    router->cluster_refresh_map();
                    return router->cluster_route(std::move(*argv), std::move(handler), deadline,
                                                 redirects + 1, std::nullopt);
                case Redirect::Kind::ask:
                    return router->cluster_route(std::move(*argv), std::move(handler), deadline,
                                                 redirects + 1, redirect.target);
                default: {
                    // TRYAGAIN (a slot in migration) or CLUSTERDOWN (a master lost, no replica
                    // promoted yet): later, jittered, bounded by max_redirects.
                    if (redirect.kind == Redirect::Kind::cluster_down)
                        router->cluster_refresh_map();
                    auto id = router->cluster_->next_retry++;
                    router->cluster_->retrying.emplace(id, std::move(handler));
                    auto timer = std::make_shared<asio::steady_timer>(
                        router->io_, cluster_retry_delay(redirects));
                    timer->async_wait([self, timer, argv, deadline, redirects,
                                       id](boost::system::error_code) mutable {
                        auto again = self.lock();
                        if (!again || !again->cluster_) return;
                        auto found = again->cluster_->retrying.find(id);
                        if (found == again->cluster_->retrying.end()) return;  // answered by fail()
                        auto answer = std::move(found->second);
                        again->cluster_->retrying.erase(found);
                        again->cluster_route(std::move(*argv), std::move(answer), deadline,
                                             redirects + 1, std::nullopt);
                    });
                    return;
                }
            }
        },
        deadline);
}

void AsyncConnection::script(const ScriptSource& script, std::span<const std::string> keys,
                             std::span<const std::string> args, ReplyHandler handler,
                             std::chrono::milliseconds deadline) {
    // One copy of the call, kept for a re-send; the script's text (kilobytes, with the shared
    // helpers) is copied only then, not on every call.
    auto argv = std::make_shared<std::vector<std::string>>();
    argv->reserve(3 + keys.size() + args.size());
    bool fcall = functions_ && !script.function.empty();
    argv->emplace_back(fcall ? "FCALL" : "EVALSHA");
    argv->emplace_back(fcall ? function_for(script, plain_server_) : script.sha1);
    argv->push_back(std::to_string(keys.size()));
    argv->insert(argv->end(), keys.begin(), keys.end());
    argv->insert(argv->end(), args.begin(), args.end());
    send_script(script, std::move(argv), std::move(handler), deadline);
}

void AsyncConnection::send_script(const ScriptSource& script,
                                  std::shared_ptr<std::vector<std::string>> argv,
                                  ReplyHandler handler, std::chrono::milliseconds deadline) {
    // The embedded script lives as long as the program.
    dispatch(
        *argv,
        [self = weak_from_this(), script = &script, argv, handler = std::move(handler),
         deadline](std::optional<Reply> reply) mutable {
            auto connection = self.lock();
            auto miss = reply ? script_miss((*argv)[0], *reply) : ScriptMiss::none;
            if (!connection || miss == ScriptMiss::none) return handler(std::move(reply));
            // It did not run (redis/script.hpp): it goes again, behind what was pipelined
            // meanwhile. A lost script cache or library: EVAL loads and runs it in one step
            // (and the library is loaded again for the calls after it).
            auto form = ScriptForm::eval;
            if (miss == ScriptMiss::no_functions) connection->stop_functions(reply->text);
            if (miss == ScriptMiss::library && connection->functions_)
                connection->load_library(script->library);
            if (miss == ScriptMiss::refused_before_start) form = ScriptForm::evalsha;
            set_script_form(*argv, *script, form, connection->plain_server_);
            connection->send_script(*script, std::move(argv), std::move(handler), deadline);
        },
        deadline);
}

void AsyncConnection::load_library(std::string_view library) {
    if (!functions_ || loading_library_) return;
    loading_library_ = true;
    dispatch(
        {"FUNCTION", "LOAD", std::string(library)},
        [self = weak_from_this()](std::optional<Reply> reply) {
            auto connection = self.lock();
            if (!connection) return;
            connection->loading_library_ = false;
            if (reply && !library_loaded(*reply)) connection->stop_functions(reply->text);
        },
        std::chrono::seconds(10));
}

void AsyncConnection::stop_functions(const std::string& why) {
    if (!functions_) return;
    functions_ = false;
    log::debug(fmt::format("{} runs no functions ({}): the scripts go as EVALSHA",
                           describe(endpoint_), printable(why, 200)));
}

void AsyncConnection::watch_deadlines() {
    if (state_ != State::ready || impl_->pending.empty()) return;
    deadline_timer_.expires_at(impl_->pending.front().deadline);
    deadline_timer_.async_wait([self = weak_from_this()](auto error) {
        auto connection = self.lock();
        if (error || !connection || connection->state_ != State::ready) return;
        if (connection->impl_->pending.empty()) return;
        if (Clock::now() >= connection->impl_->pending.front().deadline) {
            connection->fail("no reply from the server in time");
            return;
        }
        connection->watch_deadlines();
    });
}

void AsyncConnection::fail(const std::string& reason) {
    if (state_ == State::failed) return;
    // on_ready and on_lost may drop the owner's last reference to this connection.
    auto keep = weak_from_this().lock();
    bool was_ready = state_ == State::ready;
    state_ = State::failed;
    deadline_timer_.cancel();
    master_search_.reset();
    impl_->close(false);
    if (cluster_) {
        // Each node's pending commands get nullopt from its own connection; those given before
        // the map was read, here.
        for (auto& node : std::exchange(cluster_->nodes, {}))
            node.second->close();
        cluster_->waiting.clear();
        for (auto& retry : std::exchange(cluster_->retrying, {}))
            asio::post(io_, [handler = std::move(retry.second)] { handler(std::nullopt); });
    }
    for (auto& pending : std::exchange(impl_->pending, {}))
        asio::post(io_, [handler = std::move(pending.handler)] { handler(std::nullopt); });
    auto message = fmt::format("{}: {}", describe(endpoint_), reason);
    if (!was_ready && on_ready_)
        std::exchange(on_ready_, nullptr)(message);
    else if (was_ready && on_lost_)
        std::exchange(on_lost_, nullptr)(message);
}

void AsyncConnection::close() {
    on_lost_ = nullptr;
    on_ready_ = nullptr;
    if (state_ == State::failed) return;
    impl_->close(state_ == State::ready);  // a goodbye the server understands (TLS close_notify)
    fail("closed");
}

}  // namespace workq::redis
