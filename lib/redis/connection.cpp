#include "redis/connection.hpp"

#include <poll.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

#include "redis/resp.hpp"
#include "redis/script.hpp"
#include "redis/sentinel.hpp"
#include "redis/transport.hpp"
#include "util/errors.hpp"
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

// Waits until the socket is ready for what `wait` says, or the deadline passes (false).
bool wait_until(int fd, Wait wait, Clock::time_point deadline) {
    pollfd watched{fd, static_cast<short>(wait == Wait::writable ? POLLOUT : POLLIN), 0};
    for (;;) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        int ready = ::poll(&watched, 1, static_cast<int>(left.count()));
        if (ready > 0) return true;  // an error or hang-up shows in the next read or write
        if (ready < 0 && errno != EINTR) throw TransportError(std::strerror(errno));
    }
}

bool is_noscript(const Reply& reply) {
    return reply.is_error() && reply.text.starts_with("NOSCRIPT");
}

std::vector<std::string> evalsha_argv(const ScriptSource& script,
                                      std::span<const std::string_view> keys,
                                      std::span<const std::string_view> args) {
    std::vector<std::string> argv;
    argv.reserve(3 + keys.size() + args.size());
    argv.emplace_back("EVALSHA");
    argv.emplace_back(script.sha1);
    argv.emplace_back(std::to_string(keys.size()));
    for (auto key : keys)
        argv.emplace_back(key);
    for (auto arg : args)
        argv.emplace_back(arg);
    return argv;
}

}  // namespace

Connection::Connection(std::unique_ptr<Context> context, Endpoint endpoint)
    : context_(std::move(context)), endpoint_(std::move(endpoint)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;

Connection Connection::open(const Endpoint& endpoint, Timeouts timeouts) {
    if (endpoint.sentinel && endpoint.host.empty()) return connect_to_master(endpoint, timeouts);
    return open_server(endpoint, timeouts);
}

Connection Connection::open_server(const Endpoint& endpoint, Timeouts timeouts) {
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
    if (!endpoint.password.empty()) {
        std::vector<std::string_view> auth{"AUTH"};
        if (!endpoint.username.empty()) auth.push_back(endpoint.username);
        auth.push_back(endpoint.password);
        auto reply = connection.command(auth);
        if (reply.is_error())
            throw RedisError(fmt::format("cannot log in to {}: {}", describe(endpoint),
                                         printable(reply.text, 200)));
    }
    if (endpoint.database != 0) {
        auto db = std::to_string(endpoint.database);
        auto reply = connection.command({"SELECT", db});
        if (reply.is_error())
            throw RedisError(fmt::format("cannot select database {} on {}: {}", endpoint.database,
                                         describe(endpoint), printable(reply.text, 200)));
    }
    return connection;
}

void Connection::fail(std::string_view during, std::string_view reason) {
    context_.reset();  // a connection that failed mid-stream cannot tell where its replies are
    throw RedisError(
        fmt::format("lost connection to {} during {}: {}", describe(endpoint_), during, reason));
}

void Connection::wait(Wait what) {
    if (!wait_until(context_->transport->fd(), what, Clock::now() + context_->timeout))
        throw TransportError("timed out");
}

void Connection::append(std::span<const std::string_view> args) {
    if (!context_) throw RedisError(fmt::format("connection to {} is closed", describe(endpoint_)));
    append_command(context_->output, args);
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
    if (!context_) throw RedisError(fmt::format("connection to {} is closed", describe(endpoint_)));
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
    PendingScript pending{&script, evalsha_argv(script, keys, args)};
    std::vector<std::string_view> view(pending.argv.begin(), pending.argv.end());
    append(view);
    pending_scripts_.push_back(std::move(pending));
}

std::vector<Reply> Connection::read_script_replies() {
    auto pending = std::move(pending_scripts_);
    pending_scripts_.clear();
    std::vector<Reply> replies;
    replies.reserve(pending.size());
    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < pending.size(); ++i) {
        replies.push_back(read_reply());
        if (is_noscript(replies.back())) missing.push_back(i);
    }
    if (missing.empty()) return replies;
    // The server lost its script cache (SCRIPT FLUSH, restart). A script that met NOSCRIPT did
    // not run at all, and every later call of it failed the same way, so re-sending the failed
    // calls in their order keeps the order of effects. They go as EVAL with the script's text:
    // that cannot meet NOSCRIPT again (as SCRIPT LOAD then EVALSHA could, were the cache flushed
    // in between), and it caches the script for the calls after it.
    for (auto i : missing) {
        auto& argv = pending[i].argv;
        argv[0] = "EVAL";
        argv[1] = pending[i].script->text;
        std::vector<std::string_view> view(argv.begin(), argv.end());
        append(view);
    }
    for (auto i : missing)
        replies[i] = read_reply();
    return replies;
}

void Connection::set_command_timeout(std::chrono::milliseconds timeout) {
    if (context_) context_->timeout = timeout;
}

std::string Connection::transport_security() const {
    return context_ ? context_->transport->security() : "closed";
}

Connection::~Connection() {
    // A clean goodbye (TLS close_notify) when the connection is still in a known state.
    if (context_) context_->transport->shutdown();
}

}  // namespace workq::redis
