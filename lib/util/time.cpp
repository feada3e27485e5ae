#include "util/time.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>

#include "util/duration.hpp"

namespace workq {
namespace {

// Exactly `digits` decimal digits: no sign ("T-1:00:00" is not an hour).
bool take_number(std::string_view& text, std::size_t digits, int& value) {
    if (text.size() < digits) return false;
    value = 0;
    for (std::size_t i = 0; i < digits; ++i) {
        if (text[i] < '0' || text[i] > '9') return false;
        value = value * 10 + (text[i] - '0');
    }
    text.remove_prefix(digits);
    return true;
}

int days_in_month(int year, int month) {
    static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

bool take_char(std::string_view& text, char expected) {
    if (text.empty() || text.front() != expected) return false;
    text.remove_prefix(1);
    return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
long long days_from_civil(int y, unsigned m, unsigned d) {
    y -= m <= 2;
    const long long era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<long long>(doe) - 719468;
}

std::optional<long long> parse_epoch(std::string_view text) {
    long long seconds = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc{} || end == text.data() || seconds < 0 || seconds > 100'000'000'000LL)
        return std::nullopt;
    std::string_view rest(end, static_cast<std::size_t>(text.data() + text.size() - end));
    long long millis = 0;
    if (!rest.empty()) {
        if (rest.front() != '.' || rest.size() < 2) return std::nullopt;
        long long scale = 100;
        for (char c : rest.substr(1)) {
            if (c < '0' || c > '9') return std::nullopt;
            millis += (c - '0') * scale;
            scale /= 10;
        }
    }
    return seconds * 1000 + millis;
}

}  // namespace

std::optional<long long> parse_time(std::string_view text) {
    if (text.find('-') == std::string_view::npos) return parse_epoch(text);
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    std::string_view t = text;
    if (!take_number(t, 4, year) || !take_char(t, '-') || !take_number(t, 2, month) ||
        !take_char(t, '-') || !take_number(t, 2, day))
        return std::nullopt;
    if (t.empty() || (t.front() != 'T' && t.front() != 't' && t.front() != ' '))
        return std::nullopt;
    t.remove_prefix(1);
    if (!take_number(t, 2, hour) || !take_char(t, ':') || !take_number(t, 2, minute) ||
        !take_char(t, ':') || !take_number(t, 2, second))
        return std::nullopt;
    // Second 60 is a leap second; it counts as the first second of the next minute.
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 60)
        return std::nullopt;
    long long millis = 0;
    if (!t.empty() && t.front() == '.') {
        t.remove_prefix(1);
        long long scale = 100;
        std::size_t digits = 0;
        while (!t.empty() && t.front() >= '0' && t.front() <= '9') {
            millis += (t.front() - '0') * scale;
            scale /= 10;
            t.remove_prefix(1);
            ++digits;
        }
        if (digits == 0) return std::nullopt;
    }
    long long offset_minutes = 0;
    if (t == "Z" || t == "z") {
        t = {};
    } else if (!t.empty() && (t.front() == '+' || t.front() == '-')) {
        int sign = t.front() == '-' ? -1 : 1;
        t.remove_prefix(1);
        int oh = 0, om = 0;
        if (!take_number(t, 2, oh) || !take_char(t, ':') || !take_number(t, 2, om) || !t.empty() ||
            oh > 23 || om > 59)
            return std::nullopt;
        offset_minutes = sign * (oh * 60 + om);
    } else if (t.empty()) {
        // No zone: the local time zone (TZ), as date(1) reads such a time. A local time that a
        // daylight-saving change skips does not exist: refused, as date(1) does.
        std::tm local{};
        local.tm_year = year - 1900;
        local.tm_mon = month - 1;
        local.tm_mday = day;
        local.tm_hour = hour;
        local.tm_min = minute;
        local.tm_sec = std::min(second, 59);
        local.tm_isdst = -1;
        std::time_t seconds = std::mktime(&local);
        if (seconds == static_cast<std::time_t>(-1) || local.tm_hour != hour ||
            local.tm_min != minute || local.tm_mday != day)
            return std::nullopt;
        // The leap second counts before the bound: 9999-12-31T23:59:60 would be year 10000.
        long long total = static_cast<long long>(seconds) + (second == 60 ? 1 : 0);
        constexpr long long last_local_second = 253'402'300'799LL;
        if (seconds < 0 || total > last_local_second) return std::nullopt;
        return total * 1000 + millis;
    } else {
        return std::nullopt;
    }
    long long days =
        days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    long long seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    // Before the epoch, or after 9999-12-31T23:59:59Z once the offset is applied (the time
    // could not be written back in RFC 3339's four-digit years).
    constexpr long long last_second = 253'402'300'799LL;
    if (seconds < 0 || seconds > last_second) return std::nullopt;
    return seconds * 1000 + millis;
}

std::string format_rfc3339(long long epoch_ms) {
    using namespace std::chrono;
    sys_time<milliseconds> point{milliseconds(epoch_ms)};
    auto day_point = floor<days>(point);
    year_month_day ymd{day_point};
    hh_mm_ss<milliseconds> time{point - day_point};
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                       static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                       time.hours().count(), time.minutes().count(), time.seconds().count(),
                       time.subseconds().count());
}

std::string format_relative(long long epoch_ms, long long now_ms) {
    long long delta = now_ms - epoch_ms;
    if (delta >= 0 && delta < 1000) return "just now";
    if (delta >= 0) return format_duration_short(Millis(delta)) + " ago";
    return "in " + format_duration_short(Millis(-delta));
}

}  // namespace workq
