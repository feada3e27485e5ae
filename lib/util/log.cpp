#include "util/log.hpp"

#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <chrono>

#include "util/text.hpp"
#include "util/time.hpp"

namespace workq::log {
namespace {

struct Settings {
    std::string program = "workq";
    Level level = Level::info;
    Format format = Format::human;
    bool relay = true;
};

Settings& settings() {
    static Settings instance;
    return instance;
}

const char* level_name(Level level) {
    switch (level) {
        case Level::debug:
            return "debug";
        case Level::info:
            return "info";
        case Level::warn:
            return "warning";
        case Level::error:
            return "error";
    }
    return "info";
}

// Human form of a value: bare when it is a simple word, quoted otherwise.
void append_value(std::string& out, std::string_view value) {
    bool plain = !value.empty();
    for (char c : value)
        if (c <= ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) >= 0x7f)
            plain = false;
    if (plain) {
        out += value;
        return;
    }
    out += '"';
    for (std::size_t i = 0; i < value.size(); ++i) {
        auto c = static_cast<unsigned char>(value[i]);
        auto next = i + 1 < value.size() ? static_cast<unsigned char>(value[i + 1]) : 0;
        if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {  // a C1 control, as one_line shows it
            out += fmt::format("\\u{:04x}", next);
            ++i;
        } else if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c < 0x20 || c == 0x7f) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
}

// A message that holds newlines (a multi-line error from a library) keeps the promise that
// every line of a diagnostic starts with the program's name. Other control characters (a
// handler's ESC sequences quoted in an error) are escaped, so they cannot drive a terminal.
std::string continue_lines(std::string_view message, std::string_view program) {
    std::string out;
    for (std::size_t start = 0;;) {
        auto end = message.find('\n', start);
        auto line = message.substr(start, end - start);
        out += one_line(line, line.size());
        if (end == std::string_view::npos || end + 1 == message.size()) break;
        out += fmt::format("\n{}:   ", program);
        start = end + 1;
    }
    return out;
}

// Length of the valid UTF-8 sequence at the start of `text`, or 0 if it is not one (a stray
// continuation byte, an overlong form, a surrogate, beyond U+10FFFF, or cut short).
std::size_t utf8_sequence(std::string_view text) {
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    unsigned char lead = byte(0);
    if (lead < 0x80) return 1;
    std::size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
    if (length == 0 || lead > 0xf4 || lead == 0xc0 || lead == 0xc1 || text.size() < length)
        return 0;
    for (std::size_t i = 1; i < length; ++i)
        if ((byte(i) & 0xc0) != 0x80) return 0;
    if ((lead == 0xe0 && byte(1) < 0xa0) || (lead == 0xed && byte(1) >= 0xa0) ||
        (lead == 0xf0 && byte(1) < 0x90) || (lead == 0xf4 && byte(1) >= 0x90))
        return 0;
    return length;
}

// A JSON string literal. JSON text must be UTF-8, and messages may quote bytes that are not
// (a handler's stderr, a payload): each invalid byte becomes U+FFFD so the line stays valid.
std::string json_string(std::string_view text) {
    std::string valid;
    valid.reserve(text.size());
    while (!text.empty()) {
        std::size_t length = utf8_sequence(text);
        if (length == 0) {
            valid += "\xEF\xBF\xBD";
            length = 1;
        } else {
            valid += text.substr(0, length);
        }
        text.remove_prefix(length);
    }
    return boost::json::serialize(boost::json::string(valid));
}

void write_all(const std::string& line) {
    const char* data = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        ssize_t written = ::write(STDERR_FILENO, data, left);
        if (written <= 0) return;  // stderr gone: nothing better to do
        data += written;
        left -= static_cast<std::size_t>(written);
    }
}

}  // namespace

void configure(std::string_view program, Level level, Format format) {
    settings() = Settings{std::string(program), level, format};
}
void set_level(Level level) {
    settings().level = level;
}
void relay_output(bool on) {
    settings().relay = on;
}
const std::string& program() {
    return settings().program;
}
bool enabled(Level level) {
    return level >= settings().level;
}

bool parse_level(std::string_view text, Level& level) {
    if (text == "debug")
        level = Level::debug;
    else if (text == "info")
        level = Level::info;
    else if (text == "warn" || text == "warning")
        level = Level::warn;
    else if (text == "error")
        level = Level::error;
    else
        return false;
    return true;
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
    if (!enabled(level)) return;
    try {
        const auto& config = settings();
        std::string line;
        if (config.format == Format::json) {
            // UTC whatever TZ says (fmt 9 formats a time_point in local time).
            auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
            line = fmt::format("{{\"ts\":\"{}\",\"level\":\"{}\",\"program\":{},\"msg\":{}",
                               format_rfc3339(now), level_name(level), json_string(config.program),
                               json_string(message));
            for (const auto& field : fields)
                line += fmt::format(",{}:{}", json_string(field.key), json_string(field.value));
            line += "}\n";
        } else {
            line = fmt::format("{}: {}: {}", config.program, level_name(level),
                               continue_lines(message, config.program));
            for (const auto& field : fields) {
                line += ' ';
                line += field.key;
                line += '=';
                append_value(line, field.value);
            }
            line += '\n';
        }
        write_all(line);
    } catch (...) {
        // Logging must never take a tool down.
    }
}

void relay(std::string_view tag, std::string_view text) {
    if (!settings().relay) return;
    try {
        const auto& config = settings();
        std::string line;
        if (config.format == Format::json)
            line = fmt::format("{{\"level\":\"output\",\"program\":{},\"job\":{},\"line\":{}}}\n",
                               json_string(config.program), json_string(tag), json_string(text));
        else  // escaped: a handler's ESC sequences must not drive the reader's terminal
            line = fmt::format("{}: [{}] {}\n", config.program, tag, one_line(text, text.size()));
        write_all(line);
    } catch (...) {
    }
}

}  // namespace workq::log
