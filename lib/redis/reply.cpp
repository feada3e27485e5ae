#include "redis/reply.hpp"

#include <fmt/format.h>
#include <charconv>

#include "util/errors.hpp"
#include "util/names.hpp"

namespace workq::redis {

long long Reply::as_integer() const {
    if (type == Type::integer) return integer;
    if (type == Type::string || type == Type::status) {
        long long value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec == std::errc{} && end == text.data() + text.size()) return value;
    }
    throw RedisError(
        fmt::format("unexpected reply from the server: {} (expected a number)", describe()));
}

const std::string& Reply::as_string() const {
    if (type != Type::string && type != Type::status)
        throw RedisError(
            fmt::format("unexpected reply from the server: {} (expected a string)", describe()));
    return text;
}

std::optional<std::string> Reply::as_optional_string() const {
    if (type == Type::nil) return std::nullopt;
    return as_string();
}

const std::vector<Reply>& Reply::as_array() const {
    if (type == Type::nil) {
        static const std::vector<Reply> empty;
        return empty;
    }
    if (type != Type::array)
        throw RedisError(
            fmt::format("unexpected reply from the server: {} (expected an array)", describe()));
    return elements;
}

const Reply& Reply::at(std::size_t index) const {
    const auto& items = as_array();
    if (index >= items.size())
        throw RedisError(
            fmt::format("unexpected reply from the server: {} (expected at least {} elements)",
                        describe(), index + 1));
    return items[index];
}

std::string Reply::describe() const {
    switch (type) {
        case Type::nil:
            return "nil";
        case Type::status:
            return fmt::format("status '{}'", printable(text));
        case Type::error:
            return fmt::format("error '{}'", printable(text, 200));
        case Type::integer:
            return fmt::format("integer {}", integer);
        case Type::string:
            return fmt::format("string '{}'", printable(text));
        case Type::array:
            return fmt::format("array of {}", elements.size());
    }
    return "?";
}

}  // namespace workq::redis
