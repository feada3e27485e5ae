#include "redis/async_connection.hpp"

#include <hiredis/async.h>

#include <fmt/format.h>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include "redis/hiredis_reply.hpp"
#include "util/names.hpp"

namespace workq::redis {
namespace asio = boost::asio;

namespace {

// Watches the context's socket for hiredis: level-triggered read/write interest, as hiredis
// expects from its event-library adapters. Shared with the pending waits, so that a wait that
// completes after the context is gone finds `dead` set instead of freed memory.
struct SocketWatch : std::enable_shared_from_this<SocketWatch> {
    asio::posix::stream_descriptor socket;
    redisAsyncContext* context = nullptr;
    bool want_read = false, want_write = false;
    bool read_armed = false, write_armed = false;
    bool dead = false;

    SocketWatch(asio::io_context& io, int fd, redisAsyncContext* ac)
        : socket(io, fd), context(ac) {}

    void arm_read() {
        if (dead || read_armed || !want_read) return;
        read_armed = true;
        socket.async_wait(
            asio::posix::descriptor_base::wait_read, [self = shared_from_this()](auto error) {
                self->read_armed = false;
                if (error || self->dead || !self->want_read) return;
                redisAsyncHandleRead(self->context);  // may free the context: then `dead` is set
                self->arm_read();
            });
    }
    void arm_write() {
        if (dead || write_armed || !want_write) return;
        write_armed = true;
        socket.async_wait(asio::posix::descriptor_base::wait_write,
                          [self = shared_from_this()](auto error) {
                              self->write_armed = false;
                              if (error || self->dead || !self->want_write) return;
                              redisAsyncHandleWrite(self->context);
                              self->arm_write();
                          });
    }
    // hiredis closes the fd itself after cleanup: give it back without closing it.
    void cleanup() {
        dead = true;
        want_read = want_write = false;
        socket.release();
        context = nullptr;
    }
};

SocketWatch* watch_of(void* data) {
    return static_cast<SocketWatch*>(data);
}

}  // namespace

struct AsyncConnection::Impl {
    redisAsyncContext* context = nullptr;
    std::shared_ptr<SocketWatch> watch;
    bool destroying = false;
    std::string pending_failure;  // why hiredis dropped the connection, until fail() runs

    struct Pending {
        AsyncConnection* owner;
        ReplyHandler handler;
    };

    static void on_reply(redisAsyncContext* ac, void* raw, void* privdata) {
        std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
        auto* owner = pending->owner;
        if (owner->impl_->destroying) return;
        if (!owner->sent_at_.empty()) owner->sent_at_.pop_front();
        std::optional<Reply> reply;
        if (raw)
            reply = detail::convert(static_cast<redisReply*>(raw));
        else if (ac && ac->errstr[0] && owner->impl_->pending_failure.empty())
            owner->impl_->pending_failure = ac->errstr;
        // Handlers run from the io_context, never inside hiredis, so they may send or close.
        asio::post(owner->io_, [handler = std::move(pending->handler),
                                reply = std::move(reply)]() mutable { handler(std::move(reply)); });
    }

    static void on_connect(const redisAsyncContext* ac, int status) {
        auto* owner = static_cast<AsyncConnection*>(ac->data);
        if (status == REDIS_OK || owner->impl_->destroying) return;
        // hiredis frees the context after this call
        owner->impl_->context = nullptr;
        std::string reason = ac->errstr;
        asio::post(owner->io_, [self = owner->weak_from_this(), reason] {
            if (auto connection = self.lock()) connection->fail(reason);
        });
    }

    static void on_disconnect(const redisAsyncContext* ac, int status) {
        auto* owner = static_cast<AsyncConnection*>(ac->data);
        if (owner->impl_->destroying) return;
        owner->impl_->context = nullptr;  // hiredis frees it after this call
        std::string reason = status == REDIS_OK ? "closed by the server" : ac->errstr;
        asio::post(owner->io_, [self = owner->weak_from_this(), reason] {
            if (auto connection = self.lock()) connection->fail(reason);
        });
    }

    void attach(asio::io_context& io, AsyncConnection* owner) {
        watch = std::make_shared<SocketWatch>(io, context->c.fd, context);
        context->data = owner;
        context->ev.data = watch.get();
        context->ev.addRead = [](void* data) {
            auto* w = watch_of(data);
            w->want_read = true;
            w->arm_read();
        };
        context->ev.delRead = [](void* data) { watch_of(data)->want_read = false; };
        context->ev.addWrite = [](void* data) {
            auto* w = watch_of(data);
            w->want_write = true;
            w->arm_write();
        };
        context->ev.delWrite = [](void* data) { watch_of(data)->want_write = false; };
        context->ev.cleanup = [](void* data) { watch_of(data)->cleanup(); };
        redisAsyncSetConnectCallback(context, on_connect);
        redisAsyncSetDisconnectCallback(context, on_disconnect);
    }
};

AsyncConnection::AsyncConnection(asio::io_context& io, Endpoint endpoint)
    : io_(io),
      endpoint_(std::move(endpoint)),
      impl_(std::make_unique<Impl>()),
      deadline_timer_(io) {}

AsyncConnection::~AsyncConnection() {
    impl_->destroying = true;
    if (impl_->context) redisAsyncFree(impl_->context);
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
    auto* context = endpoint_.kind == Endpoint::Kind::unix_socket
                        ? redisAsyncConnectUnix(endpoint_.socket_path.c_str())
                        : redisAsyncConnect(endpoint_.host.c_str(), endpoint_.port);
    if (!context || context->err) {
        std::string reason = context ? context->errstr : "out of memory";
        if (context) redisAsyncFree(context);
        asio::post(io_, [self = weak_from_this(), reason] {
            if (auto connection = self.lock()) connection->fail(reason);
        });
        return;
    }
    impl_->context = context;
    impl_->attach(io_, this);

    // The connect timer: hiredis 0.14 has no timeout for asynchronous connects.
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
    if (state_ == State::failed || !impl_->context) {
        asio::post(io_, [handler = std::move(handler)] { handler(std::nullopt); });
        return;
    }
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    auto* pending = new Impl::Pending{this, std::move(handler)};
    if (redisAsyncCommandArgv(impl_->context, Impl::on_reply, pending,
                              static_cast<int>(argv.size()), argv.data(),
                              lengths.data()) != REDIS_OK) {
        auto handler_back = std::move(pending->handler);
        delete pending;
        asio::post(io_, [handler_back = std::move(handler_back)] { handler_back(std::nullopt); });
        return;
    }
    sent_at_.push_back(std::chrono::steady_clock::now() + deadline);
    if (state_ == State::ready && sent_at_.size() == 1) watch_deadlines();
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
    if (state_ != State::ready || sent_at_.empty()) return;
    deadline_timer_.expires_at(sent_at_.front());
    deadline_timer_.async_wait([self = weak_from_this()](auto error) {
        auto connection = self.lock();
        if (error || !connection || connection->state_ != State::ready) return;
        if (connection->sent_at_.empty()) return;
        if (std::chrono::steady_clock::now() >= connection->sent_at_.front()) {
            connection->fail("no reply from the server in time");
            return;
        }
        connection->watch_deadlines();
    });
}

void AsyncConnection::fail(const std::string& reason) {
    if (state_ == State::failed) return;
    bool was_ready = state_ == State::ready;
    state_ = State::failed;
    deadline_timer_.cancel();
    std::string why = impl_->pending_failure.empty() ? reason : impl_->pending_failure;
    if (impl_->context) {
        auto* context = std::exchange(impl_->context, nullptr);
        redisAsyncFree(context);  // pending handlers get nullopt
    }
    sent_at_.clear();
    auto message = fmt::format("{}: {}", describe(endpoint_), why);
    if (!was_ready && on_ready_)
        std::exchange(on_ready_, nullptr)(message);
    else if (was_ready && on_lost_)
        std::exchange(on_lost_, nullptr)(message);
}

void AsyncConnection::close() {
    on_lost_ = nullptr;
    on_ready_ = nullptr;
    if (state_ != State::failed) fail("closed");
}

}  // namespace workq::redis
