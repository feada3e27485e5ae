#include "redis/resp.hpp"

#include <fmt/format.h>
#include <charconv>

#include "redis/hiredis_reply.hpp"
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

struct ReplyReader::Raw {
    redisReader* reader = redisReaderCreate();
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
    std::unique_ptr<redisReply, void (*)(redisReply*)> owned(
        static_cast<redisReply*>(raw), [](redisReply* reply) { freeReplyObject(reply); });
    return detail::convert(owned.get());
}

}  // namespace workq::redis
