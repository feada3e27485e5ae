// A Redis reply as a plain value, so that no hiredis type leaves lib/redis.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace workq::redis {

struct Reply {
    enum class Type { nil, status, error, integer, string, array };
    Type type = Type::nil;
    long long integer = 0;
    std::string text;  // status, error or bulk string bytes (may hold NUL)
    std::vector<Reply> elements;

    bool is_nil() const { return type == Type::nil; }
    bool is_error() const { return type == Type::error; }
    bool is_array() const { return type == Type::array; }
    bool is_string() const { return type == Type::string || type == Type::status; }

    // The reply as a number: an integer reply, or a string that holds one. Throws RedisError
    // ("unexpected reply ...") otherwise; used where the server's answer has a known shape.
    long long as_integer() const;
    // The bytes of a string or status reply; throws RedisError for other types.
    const std::string& as_string() const;
    // A string reply, or nullopt for nil.
    std::optional<std::string> as_optional_string() const;
    // The elements of an array reply (an empty array for nil); throws for other types.
    const std::vector<Reply>& as_array() const;

    // The element at `index` of an array reply; throws RedisError when out of range.
    const Reply& at(std::size_t index) const;

    // A short rendering for messages.
    std::string describe() const;
};

}  // namespace workq::redis
