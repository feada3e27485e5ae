#include "redis/async_connection.hpp"

#include <fmt/format.h>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <deque>

#include "redis/resp.hpp"
#include "redis/sentinel.hpp"
#include "redis/transport.hpp"
#include "util/errors.hpp"
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
    return impl_ && impl_->transport ? impl_->transport->security() : "closed";
}

std::size_t AsyncConnection::in_flight() const {
    return impl_->pending.size();
}

std::shared_ptr<AsyncConnection> AsyncConnection::open(asio::io_context& io,
                                                       const Endpoint& endpoint,
                                                       std::chrono::milliseconds connect_timeout,
                                                       ReadyHandler on_ready, LostHandler on_lost) {
    std::shared_ptr<AsyncConnection> connection(new AsyncConnection(io, endpoint));
    connection->on_ready_ = std::move(on_ready);
    connection->on_lost_ = std::move(on_lost);
    connection->start(connect_timeout);
    return connection;
}

void AsyncConnection::start(std::chrono::milliseconds connect_timeout) {
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
            impl.output.clear();
            impl.written = 0;
        }

        // Always reading, even with nothing in flight: a server that closes the connection
        // is noticed at once, not at the next command. The replies that came before the end
        // still go to their commands (an error a server sends before it hangs up, say).
        auto read_wait = Wait::none;
        std::optional<std::string> ended;
        char buffer[16 * 1024];
        while (read_wait == Wait::none && !ended) {
            try {
                auto io = impl.transport->read(buffer, sizeof buffer);
                if (io.bytes == 0)
                    read_wait = io.wait;
                else
                    impl.reader.feed(buffer, io.bytes);
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
    send(args, std::move(handler), deadline);
}

void AsyncConnection::script(const ScriptSource& script, std::span<const std::string> keys,
                             std::span<const std::string> args, ReplyHandler handler,
                             std::chrono::milliseconds deadline) {
    // One copy of the call, kept for a NOSCRIPT re-send; the script's text (kilobytes, with the
    // shared helpers) is copied only then, not on every call.
    auto argv = std::make_shared<std::vector<std::string>>();
    argv->reserve(3 + keys.size() + args.size());
    argv->emplace_back("EVALSHA");
    argv->emplace_back(script.sha1);
    argv->push_back(std::to_string(keys.size()));
    argv->insert(argv->end(), keys.begin(), keys.end());
    argv->insert(argv->end(), args.begin(), args.end());
    send(
        *argv,
        [self = weak_from_this(), text = script.text, argv, handler = std::move(handler),
         deadline](std::optional<Reply> reply) mutable {
            auto connection = self.lock();
            if (connection && reply && reply->is_error() && reply->text.starts_with("NOSCRIPT")) {
                // The server lost its script cache: EVAL loads and runs it in one step.
                (*argv)[0] = "EVAL";
                (*argv)[1] = std::string(text);  // the embedded text lives as long as the program
                connection->send(*argv, std::move(handler), deadline);
                return;
            }
            handler(std::move(reply));
        },
        deadline);
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
