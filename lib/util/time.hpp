// Points in time as users write them and as the tools print them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace workq {

// Parses --at values: RFC 3339 ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00.5+01:00",
// a space instead of 'T' is accepted; without a zone, "2026-12-24T10:00:00" is the local time
// of TZ, as date(1) reads it) or epoch seconds ("1764064800", "1764064800.25").
// Returns epoch milliseconds, or nullopt when malformed.
std::optional<long long> parse_time(std::string_view text);

// Epoch milliseconds as RFC 3339 in UTC with millisecond precision: "2026-11-25T10:00:00.123Z".
std::string format_rfc3339(long long epoch_ms);

// A relative form for people: "3s ago", "in 4m12s", "just now".
std::string format_relative(long long epoch_ms, long long now_ms);

}  // namespace workq
