#include "util/log.hpp"

#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <chrono>

namespace workq::log {
namespace {

struct Settings {
    std::string program = "workq";
    Level level = Level::info;
    Format format = Format::human;
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
    for (unsigned char c : value) {
        if (c == '"' || c == '\\') {
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

std::string json_string(std::string_view text) {
    return boost::json::serialize(boost::json::string(text));
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
            auto now = std::chrono::system_clock::now();
            line = fmt::format(
                "{{\"ts\":\"{:%Y-%m-%dT%H:%M:%S}Z\",\"level\":\"{}\",\"program\":{},\"msg\":{}",
                std::chrono::floor<std::chrono::milliseconds>(now), level_name(level),
                json_string(config.program), json_string(message));
            for (const auto& field : fields)
                line += fmt::format(",{}:{}", json_string(field.key), json_string(field.value));
            line += "}\n";
        } else {
            line = fmt::format("{}: {}: {}", config.program, level_name(level), message);
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
    if (settings().level > Level::error) return;
    try {
        const auto& config = settings();
        std::string line;
        if (config.format == Format::json)
            line = fmt::format("{{\"level\":\"output\",\"program\":{},\"job\":{},\"line\":{}}}\n",
                               json_string(config.program), json_string(tag), json_string(text));
        else
            line = fmt::format("{}: [{}] {}\n", config.program, tag, text);
        write_all(line);
    } catch (...) {
    }
}

}  // namespace workq::log
