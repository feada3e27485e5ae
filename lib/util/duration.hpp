// Durations as users write them: "500ms", "30s", "1.5s", "5m", "2h", "1d", compounds such as
// "1h30m", or plain (possibly fractional) seconds such as "90" or "2.5".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace workq {

using Millis = std::chrono::milliseconds;

// Parses a duration. Returns nullopt for anything malformed: empty text, a unit it does not
// know, a negative value, a number without digits, or more than 100 years.
std::optional<Millis> parse_duration(std::string_view text);

// Like parse_duration, but throws UsageError naming `what` (for example "--timeout") and the
// offending text.
Millis parse_duration_or_throw(std::string_view text, std::string_view what);

// Formats a duration the way parse_duration reads it, shortest exact form: "1h30m", "250ms".
std::string format_duration(Millis duration);

// A short human form for tables: "3s", "4m12s", "2h05m", "3d4h"; sub-second values as "0.25s".
std::string format_duration_short(Millis duration);

}  // namespace workq
