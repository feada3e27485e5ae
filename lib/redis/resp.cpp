#include "redis/resp.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <algorithm>
#include <charconv>

#include "redis/transport.hpp"
#include "util/names.hpp"

namespace workq::redis {
namespace {

// What hiredis's redisFormatCommandArgv writes, written straight into the output buffer
// (hiredis would allocate and format a copy per command).
// "*3\r\n" or "$5\r\n": a header with a count, without a formatter (it runs for every argument
// of every command).
void append_header(std::string& out, char kind, std::size_t count) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, count).ptr;
    out.push_back(kind);
    out.append(digits, end);
    out.append("\r\n");
}

template <typename Args>
void append_array(std::string& out, const Args& args) {
    std::size_t bytes = 16;
    for (const auto& arg : args)
        bytes += arg.size() + 16;
    out.reserve(out.size() + bytes);
    append_header(out, '*', args.size());
    for (const auto& arg : args) {
        append_header(out, '$', arg.size());
        out.append(arg.data(), arg.size());
        out.append("\r\n");
    }
}

}  // namespace

void append_command(std::string& out, std::span<const std::string_view> args) {
    append_array(out, args);
}

void append_command(std::string& out, std::span<const std::string> args) {
    append_array(out, args);
}

namespace {

// hiredis builds the Reply tree itself through these (no redisReply tree to convert, copy and
// free per reply: two allocations fewer per element). A nested element lives in its parent's
// `elements`: hiredis hands out elements in order and adds to an array only once the element
// before it is complete, so a pointer it still holds (an array being filled) never moves. Only
// a whole reply is ever freed through freeObject. Returning null says "out of memory"; no
// exception may cross hiredis's C frames.
Reply* place(const redisReadTask* task) noexcept {
    try {
        if (!task->parent) return new Reply;
        auto& siblings = static_cast<Reply*>(task->parent->obj)->elements;
        return &siblings.emplace_back();
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

void* create_string(const redisReadTask* task, char* str, std::size_t len) noexcept {
    auto* reply = place(task);
    if (!reply) return nullptr;
    reply->type = task->type == REDIS_REPLY_STATUS  ? Reply::Type::status
                  : task->type == REDIS_REPLY_ERROR ? Reply::Type::error
                                                    : Reply::Type::string;
    try {
        reply->text.assign(str, len);
    } catch (const std::bad_alloc&) {
        if (!task->parent) delete reply;
        return nullptr;
    }
    return reply;
}

void* create_array(const redisReadTask* task, int elements) noexcept {
    auto* reply = place(task);
    if (!reply) return nullptr;
    reply->type = Reply::Type::array;
    // A server's count, bounded: a larger array grows as its elements come.
    constexpr int reserved_elements = 1024;
    try {
        reply->elements.reserve(static_cast<std::size_t>(std::min(elements, reserved_elements)));
    } catch (const std::bad_alloc&) {
        if (!task->parent) delete reply;
        return nullptr;
    }
    return reply;
}

void* create_integer(const redisReadTask* task, long long value) noexcept {
    auto* reply = place(task);
    if (!reply) return nullptr;
    reply->type = Reply::Type::integer;
    reply->integer = value;
    return reply;
}

void* create_nil(const redisReadTask* task) noexcept {
    return place(task);
}

void free_reply(void* reply) noexcept {
    delete static_cast<Reply*>(reply);
}

// hiredis keeps the pointer: one table for every reader, constant-initialized (no reader made
// during another file's static initialization can find it empty).
constinit redisReplyObjectFunctions building_functions{.createString = create_string,
                                                       .createArray = create_array,
                                                       .createInteger = create_integer,
                                                       .createNil = create_nil,
                                                       .freeObject = free_reply};

}  // namespace

struct ReplyReader::Raw {
    redisReader* reader = redisReaderCreateWithFunctions(&building_functions);
    ~Raw() {
        if (reader) redisReaderFree(reader);
    }
};

ReplyReader::ReplyReader() : raw_(std::make_unique<Raw>()) {
    if (!raw_->reader) throw std::bad_alloc();
}
ReplyReader::~ReplyReader() = default;
ReplyReader::ReplyReader(ReplyReader&&) noexcept = default;
ReplyReader& ReplyReader::operator=(ReplyReader&&) noexcept = default;

void ReplyReader::feed(const char* data, std::size_t size) {
    if (redisReaderFeed(raw_->reader, data, size) != REDIS_OK)
        throw TransportError("out of memory reading a reply");
}

std::optional<Reply> ReplyReader::next() {
    void* raw = nullptr;
    if (redisReaderGetReply(raw_->reader, &raw) != REDIS_OK)
        throw TransportError(fmt::format("the server's reply is not RESP ({})",
                                         printable(raw_->reader->errstr, 200)));
    if (!raw) return std::nullopt;
    std::unique_ptr<Reply> owned(static_cast<Reply*>(raw));
    return std::move(*owned);
}

}  // namespace workq::redis
