#include "redis/connection.hpp"

#include "redis/hiredis_reply.hpp"

#include <fmt/format.h>

#include "redis/script.hpp"
#include "util/errors.hpp"
#include "util/names.hpp"

namespace workq::redis {

struct Connection::Context {
    redisContext* raw = nullptr;
    ~Context() {
        if (raw) redisFree(raw);
    }
};

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
    return timeval{static_cast<time_t>(ms.count() / 1000),
                   static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

struct ReplyDeleter {
    void operator()(void* reply) const { freeReplyObject(reply); }
};
using RawReply = std::unique_ptr<void, ReplyDeleter>;

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
Connection::~Connection() = default;

Connection Connection::open(const Endpoint& endpoint, Timeouts timeouts) {
    auto context = std::make_unique<Context>();
    auto tv = to_timeval(timeouts.connect);
    if (endpoint.kind == Endpoint::Kind::unix_socket)
        context->raw = redisConnectUnixWithTimeout(endpoint.socket_path.c_str(), tv);
    else
        context->raw = redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv);
    if (!context->raw)
        throw RedisError(fmt::format("cannot connect to {}: out of memory", describe(endpoint)));
    if (context->raw->err)
        throw RedisError(
            fmt::format("cannot connect to {}: {}", describe(endpoint), context->raw->errstr));
    redisSetTimeout(context->raw, to_timeval(timeouts.command));

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

void Connection::fail(std::string_view during) {
    std::string reason = context_ && context_->raw && context_->raw->err ? context_->raw->errstr
                                                                         : "connection closed";
    if (reason.find("Resource temporarily unavailable") != std::string::npos) reason = "timed out";
    context_.reset();  // hiredis contexts are not reusable after an error
    throw RedisError(
        fmt::format("lost connection to {} during {}: {}", describe(endpoint_), during, reason));
}

void Connection::append(std::span<const std::string_view> args) {
    if (!context_) throw RedisError(fmt::format("connection to {} is closed", describe(endpoint_)));
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (auto arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context_->raw, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK)
        fail("sending a command");
}

Reply Connection::read_reply() {
    if (!context_) throw RedisError(fmt::format("connection to {} is closed", describe(endpoint_)));
    void* raw = nullptr;
    if (redisGetReply(context_->raw, &raw) != REDIS_OK || raw == nullptr) fail("reading a reply");
    RawReply owned(raw);
    return detail::convert(static_cast<redisReply*>(raw));
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
    if (context_) redisSetTimeout(context_->raw, to_timeval(timeout));
}

}  // namespace workq::redis
