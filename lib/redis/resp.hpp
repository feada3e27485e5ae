// RESP on our own transport (redis/transport.hpp): commands written as RESP arrays, replies
// parsed by hiredis 0.14's reader, which is independent of hiredis's I/O.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "redis/reply.hpp"

namespace workq::redis {

// Appends one command, as a RESP array of bulk strings, to `out`. The arguments are sent with
// their lengths: payloads may hold NUL bytes and line ends.
void append_command(std::string& out, std::span<const std::string_view> args);
void append_command(std::string& out, std::span<const std::string> args);

// Turns the bytes a server sends into replies, however they were split into reads.
class ReplyReader {
  public:
    ReplyReader();
    ~ReplyReader();
    ReplyReader(ReplyReader&&) noexcept;
    ReplyReader& operator=(ReplyReader&&) noexcept;

    // Adds bytes read from the server.
    void feed(const char* data, std::size_t size);
    // The next complete reply, or nullopt until more bytes come. Throws TransportError when the
    // bytes are not RESP (the reader is then unusable, as the connection is).
    std::optional<Reply> next();

  private:
    struct Raw;
    std::unique_ptr<Raw> raw_;
};

}  // namespace workq::redis
