#include "redis/resp.hpp"

#include <fmt/format.h>

#include "redis/hiredis_reply.hpp"
#include "redis/transport.hpp"
#include "util/names.hpp"

namespace workq::redis {
namespace {

// What hiredis's redisFormatCommandArgv writes, written straight into the output buffer
// (hiredis would allocate and format a copy per command).
template <typename Args>
void append_array(std::string& out, const Args& args) {
    fmt::format_to(std::back_inserter(out), "*{}\r\n", args.size());
    for (const auto& arg : args) {
        fmt::format_to(std::back_inserter(out), "${}\r\n", arg.size());
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
