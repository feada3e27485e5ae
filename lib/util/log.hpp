// Diagnostics on stderr, one line per event, each starting with the program's name:
//   workq-work: warning: job failed; will retry job=01h... queue=mail attempt=1/3 duration=0.21s
// or, with --log-format json, one JSON object per line with the same fields.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace workq::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };
enum class Format { human, json };

struct Field {
    std::string_view key;
    std::string value;
};

// Sets the program name that prefixes every line, the least severe level written, and the format.
void configure(std::string_view program, Level level, Format format);
void set_level(Level level);
const std::string& program();
bool enabled(Level level);

// Parses "debug", "info", "warn"/"warning", "error"; nullopt-like false when unknown.
bool parse_level(std::string_view text, Level& level);

// Writes one line (unless the level is below the configured one). Never throws.
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void debug(std::string_view message, std::initializer_list<Field> fields = {}) {
    if (enabled(Level::debug)) write(Level::debug, message, fields);
}
inline void info(std::string_view message, std::initializer_list<Field> fields = {}) {
    write(Level::info, message, fields);
}
inline void warn(std::string_view message, std::initializer_list<Field> fields = {}) {
    write(Level::warn, message, fields);
}
inline void error(std::string_view message, std::initializer_list<Field> fields = {}) {
    write(Level::error, message, fields);
}

// Writes a line of a handler's stderr, tagged with its job id: "workq-work: [job-id] text",
// control characters and invalid UTF-8 escaped as one_line does (util/text.hpp).
// Relayed output is the user's, not an event of ours: --quiet (our own lines) leaves it alone;
// only relay_output(false) (--log-level error) silences it.
void relay(std::string_view tag, std::string_view line);
// Whether relay() writes (on unless turned off; configure() turns it on again).
void relay_output(bool on);

}  // namespace workq::log
