#include "util/duration.hpp"

#include <fmt/format.h>
#include <cmath>

#include "util/errors.hpp"
#include "util/names.hpp"

namespace workq {
namespace {

constexpr double max_millis = 100.0 * 365 * 24 * 3600 * 1000;  // a century is "forever" enough

std::optional<double> unit_millis(std::string_view unit) {
    if (unit == "ms") return 1.0;
    if (unit == "s" || unit.empty()) return 1000.0;
    if (unit == "m") return 60'000.0;
    if (unit == "h") return 3'600'000.0;
    if (unit == "d") return 86'400'000.0;
    return std::nullopt;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_unit_char(char c) {
    return c >= 'a' && c <= 'z';
}

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
    if (text.empty()) return std::nullopt;
    double total = 0;
    std::size_t pos = 0;
    bool saw_unitless = false;
    while (pos < text.size()) {
        // number: digits, optionally a fraction
        std::size_t start = pos;
        double whole = 0;
        while (pos < text.size() && is_digit(text[pos])) {
            whole = whole * 10 + (text[pos] - '0');
            if (whole > max_millis) return std::nullopt;
            ++pos;
        }
        bool has_digits = pos > start;
        double fraction = 0, scale = 0.1;
        if (pos < text.size() && text[pos] == '.') {
            ++pos;
            std::size_t frac_start = pos;
            while (pos < text.size() && is_digit(text[pos])) {
                fraction += (text[pos] - '0') * scale;
                scale /= 10;
                ++pos;
            }
            has_digits = has_digits || pos > frac_start;
        }
        if (!has_digits) return std::nullopt;
        std::size_t unit_start = pos;
        while (pos < text.size() && is_unit_char(text[pos]))
            ++pos;
        auto unit = text.substr(unit_start, pos - unit_start);
        auto factor = unit_millis(unit);
        if (!factor) return std::nullopt;
        // A bare number is allowed only alone ("90"), not inside a compound ("1h30").
        if (unit.empty()) {
            if (start != 0 || pos != text.size()) return std::nullopt;
            saw_unitless = true;
        }
        total += (whole + fraction) * *factor;
        if (total > max_millis) return std::nullopt;
    }
    (void)saw_unitless;
    return Millis{static_cast<Millis::rep>(std::llround(total))};
}

Millis parse_duration_or_throw(std::string_view text, std::string_view what) {
    if (auto parsed = parse_duration(text)) return *parsed;
    throw UsageError(fmt::format(
        "{}: invalid duration '{}' (expected e.g. 500ms, 30s, 1.5s, 5m, 2h, 1d, 1h30m or seconds)",
        what, printable(text)));
}

std::string format_duration(Millis duration) {
    auto ms = duration.count();
    if (ms == 0) return "0s";
    std::string out;
    if (ms < 0) {
        out = "-";
        ms = -ms;
    }
    struct Unit {
        long long size;
        const char* name;
    };
    static constexpr Unit units[] = {
        {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
    for (const auto& unit : units) {
        if (ms >= unit.size) {
            out += fmt::format("{}{}", ms / unit.size, unit.name);
            ms %= unit.size;
        }
    }
    return out;
}

std::string format_duration_short(Millis duration) {
    auto ms = duration.count();
    if (ms < 0) ms = 0;
    if (ms < 1000) return fmt::format("{:.2f}s", static_cast<double>(ms) / 1000.0);
    auto s = ms / 1000;
    if (s < 60) return fmt::format("{}s", s);
    if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
    if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
    return fmt::format("{}d{}h", s / 86400, (s % 86400) / 3600);
}

}  // namespace workq
