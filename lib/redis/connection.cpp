#include "redis/connection.hpp"

#include <poll.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

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
    if (!endpoint.sentinel || !endpoint.host.empty()) return open_server(endpoint, timeouts);
    auto connection = connect_to_master(endpoint, timeouts);
    connection.origin_ = endpoint;
    connection.timeouts_ = timeouts;
    return connection;
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
    // calls in their order keeps the order of effects. The first of each script goes as EVAL
    // with its text, which caches it for the EVALSHAs behind it in the same pipeline: one copy
    // of a 17 KB text per script, not one per call (500 per page of a dlq export).
    auto resend = [&](const std::vector<std::size_t>& calls, bool every_one_as_text) {
        std::set<const ScriptSource*> text_sent;
        for (auto i : calls) {
            auto& argv = pending[i].argv;
            if (every_one_as_text || text_sent.insert(pending[i].script).second) {
                argv[0] = "EVAL";
                argv[1] = pending[i].script->text;
            }
            std::vector<std::string_view> view(argv.begin(), argv.end());
            append(view);
        }
        std::vector<std::size_t> failed_again;
        for (auto i : calls) {
            replies[i] = read_reply();
            if (is_noscript(replies[i])) failed_again.push_back(i);
        }
        return failed_again;
    };
    // Flushed again between an EVAL and the EVALSHAs after it (another client's SCRIPT FLUSH
    // in that instant): those calls did not run; they go again, each with its text, which
    // cannot meet NOSCRIPT. Only in that case can a call of one script run after a later call
    // of another.
    auto again = resend(missing, false);
    if (!again.empty()) resend(again, true);
    return replies;
}

void Connection::set_command_timeout(std::chrono::milliseconds timeout) {
    if (context_) context_->timeout = timeout;
}

long long Connection::wait_for_replicas(long long replicas, std::chrono::milliseconds timeout) {
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
    return context_ ? context_->transport->security() : "closed";
}

Connection::~Connection() {
    // A clean goodbye (TLS close_notify) when the connection is still in a known state.
    if (context_) context_->transport->shutdown();
}

}  // namespace workq::redis
