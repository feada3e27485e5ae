#include "util/cron.hpp"

#include <date/date.h>
#include <date/tz.h>

// ptz.h (date 3.0.1) writes an unqualified hh_mm_ss under both `using namespace date` and
// `using namespace std::chrono`, which C++20 makes ambiguous; an alias of date's own that only
// namespace date holds lets it compile unchanged.
namespace date {
template <class Duration>
using ptz_hh_mm_ss = hh_mm_ss<Duration>;
}
#define hh_mm_ss ptz_hh_mm_ss
#include <date/ptz.h>
#undef hh_mm_ss
#include <fmt/format.h>

#include <array>
#include <fstream>
#include <iterator>
#include <vector>

#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/names.hpp"

namespace workq {
namespace {

using namespace std::chrono_literals;

// Far enough for the rarest expression that fires at all: February 29th on a given weekday
// (`0 0 29 2 *` with a `*/7` day of week) recurs after at most 40 years, across 2100.
constexpr int search_days = 50 * 366;
constexpr std::size_t max_zone_name = 64;

struct Field {
    const char* name;  // as messages name it: "the day-of-month field"
    int min;
    int max;
    const std::array<const char*, 12>* names;  // names[i] stands for min + i; null: numbers only
};

constexpr std::array<const char*, 12> month_names{"jan", "feb", "mar", "apr", "may", "jun",
                                                  "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<const char*, 12> day_names{"sun", "mon", "tue", "wed",
                                                "thu", "fri", "sat", nullptr};

// Day of week runs 0-7 as crontab(5) writes it (7 is Sunday again); values are folded to 0-6
// when stored.
constexpr std::array<Field, 5> fields{{
    {"minute", 0, 59, nullptr},
    {"hour", 0, 23, nullptr},
    {"day-of-month", 1, 31, nullptr},
    {"month", 1, 12, &month_names},
    {"day-of-week", 0, 7, &day_names},
}};

// A problem inside one field; parse_cron adds the expression and the field to the message.
struct FieldProblem {
    std::string what;
};

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool all_digits(std::string_view text) {
    if (text.empty()) return false;
    for (char c : text)
        if (c < '0' || c > '9') return false;
    return true;
}

// One value of a field: a number or, in the month and day-of-week fields, a name.
int parse_value(const Field& field, std::string_view text) {
    if (text.empty()) throw FieldProblem{"a range or step is missing a number"};
    if (all_digits(text)) {
        // Eight digits are plenty for any field and keep the arithmetic far from overflow.
        if (text.size() > 8)
            throw FieldProblem{
                fmt::format("{} is out of range {}-{}", printable(text, 20), field.min, field.max)};
        int value = 0;
        for (char c : text)
            value = value * 10 + (c - '0');
        if (value < field.min || value > field.max)
            throw FieldProblem{
                fmt::format("{} is out of range {}-{}", value, field.min, field.max)};
        return value;
    }
    if (field.names != nullptr && text.size() == 3) {
        std::string name{lower(text[0]), lower(text[1]), lower(text[2])};
        for (std::size_t i = 0; i < field.names->size(); ++i)
            if ((*field.names)[i] != nullptr && name == (*field.names)[i])
                return field.min + static_cast<int>(i);
    }
    if (field.names == &month_names)
        throw FieldProblem{fmt::format("'{}' is neither a number nor a month name (jan..dec)",
                                       printable(text, 20))};
    if (field.names == &day_names)
        throw FieldProblem{
            fmt::format("'{}' is neither a number nor a day name (sun..sat)", printable(text, 20))};
    throw FieldProblem{fmt::format("'{}' is not a number", printable(text, 20))};
}

// One list item: `*`, N, N-M, each with an optional /STEP. Returns the values it allows.
std::vector<int> parse_item(const Field& field, std::string_view item) {
    if (item.empty()) throw FieldProblem{"a list has an empty item"};
    int step = 1;
    bool stepped = false;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
        auto step_text = item.substr(slash + 1);
        if (!all_digits(step_text))
            throw FieldProblem{
                fmt::format("the step '{}' is not a positive number", printable(step_text, 20))};
        if (step_text.size() > 8)
            throw FieldProblem{fmt::format("the step {} is larger than the field's range",
                                           printable(step_text, 20))};
        step = 0;
        for (char c : step_text)
            step = step * 10 + (c - '0');
        if (step == 0) throw FieldProblem{"a step of 0 never advances"};
        stepped = true;
        item = item.substr(0, slash);
    }
    int low = 0;
    int high = 0;
    if (item == "*") {
        low = field.min;
        high = field.max;
    } else if (auto dash = item.find('-'); dash != std::string_view::npos) {
        low = parse_value(field, item.substr(0, dash));
        high = parse_value(field, item.substr(dash + 1));
        // A range of days that ends on Sunday, written 0 or sun (`fri-sun`), ends on 7.
        if (field.names == &day_names && high == 0 && low > 0) high = 7;
        if (high < low)
            throw FieldProblem{fmt::format("the range {} runs backwards", printable(item, 20))};
    } else {
        low = parse_value(field, item);
        // `N/STEP` runs from N to the field's end, as cronie reads it (day of week: to 7, so
        // `1/2` includes Sunday).
        high = stepped ? field.max : low;
    }
    std::vector<int> values;
    for (int value = low; value <= high; value += step)
        values.push_back(value);
    return values;
}

template <std::size_t N>
std::bitset<N> parse_field(const Field& field, std::string_view text) {
    std::bitset<N> allowed;
    std::size_t start = 0;
    while (true) {
        auto comma = text.find(',', start);
        auto item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
        for (int value : parse_item(field, item)) {
            if constexpr (N == 7) value %= 7;  // day of week 7 is Sunday, stored as 0
            allowed.set(static_cast<std::size_t>(value));
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return allowed;
}

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::vector<std::string_view> split_blanks(std::string_view text) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_blank(text[i]))
            ++i;
        std::size_t start = i;
        while (i < text.size() && !is_blank(text[i]))
            ++i;
        if (i > start) words.push_back(text.substr(start, i - start));
    }
    return words;
}

constexpr const char* expected_forms =
    "expected five fields (minute hour day-of-month month day-of-week) or one of @hourly, "
    "@daily, @weekly, @monthly, @yearly, @every DURATION";

[[noreturn]] void refuse(std::string_view text, std::string_view problem) {
    throw UsageError(
        fmt::format("invalid cron expression '{}': {}", printable(text, 100), problem));
}

CronExpression parse_every(std::string_view text, std::string_view duration) {
    auto period = parse_duration(duration);
    if (!period)
        refuse(text, fmt::format("@every: '{}' is not a duration (30s, 5m, 1h30m, ...)",
                                 printable(duration, 40)));
    if (period->count() % 1000 != 0 || *period < 1s)
        refuse(text, fmt::format("@every: the period must be whole seconds, at least 1s (got {})",
                                 printable(duration, 40)));
    CronExpression expression;
    expression.every = std::chrono::duration_cast<std::chrono::seconds>(*period);
    return expression;
}

CronExpression parse_fields(std::string_view text, const std::vector<std::string_view>& words) {
    CronExpression expression;
    auto field_problem = [&](std::size_t index, const FieldProblem& problem) {
        refuse(text, fmt::format("the {} field '{}': {}", fields[index].name,
                                 printable(words[index], 40), problem.what));
    };
    try {
        expression.minutes = parse_field<60>(fields[0], words[0]);
    } catch (const FieldProblem& problem) {
        field_problem(0, problem);
    }
    try {
        expression.hours = parse_field<24>(fields[1], words[1]);
    } catch (const FieldProblem& problem) {
        field_problem(1, problem);
    }
    try {
        expression.days_of_month = parse_field<32>(fields[2], words[2]);
    } catch (const FieldProblem& problem) {
        field_problem(2, problem);
    }
    try {
        expression.months = parse_field<13>(fields[3], words[3]);
    } catch (const FieldProblem& problem) {
        field_problem(3, problem);
    }
    try {
        expression.days_of_week = parse_field<7>(fields[4], words[4]);
    } catch (const FieldProblem& problem) {
        field_problem(4, problem);
    }
    // crontab(5): the day fields combine with "or" only when both are restricted; cron decides
    // that by the field's first character, so `*/2` counts as unrestricted.
    bool dom_restricted = words[2].front() != '*';
    bool dow_restricted = words[4].front() != '*';
    expression.day_rule = dom_restricted && dow_restricted ? DayRule::either : DayRule::both;
    return expression;
}

bool day_matches(const CronExpression& expression, date::local_days day) {
    date::year_month_day ymd{day};
    if (!expression.months[static_cast<unsigned>(ymd.month())]) return false;
    bool dom = expression.days_of_month[static_cast<unsigned>(ymd.day())];
    bool dow = expression.days_of_week[date::weekday{day}.c_encoding()];
    return expression.day_rule == DayRule::either ? (dom || dow) : (dom && dow);
}

constexpr const char* zoneinfo_dir = "/usr/share/zoneinfo/";

// The POSIX TZ rule a version 2+ tzfile ends with ("CET-1CEST,M3.5.0,M10.5.0/3"), which says
// what happens after the last change the file lists; nullopt when there is none or ptz.h cannot
// read it (a few zones use extensions of POSIX).
std::optional<Posix::time_zone> tail_rule(std::string_view name) {
    std::ifstream file(std::string(zoneinfo_dir) + std::string(name), std::ios::binary);
    std::string data{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    if (data.size() < 6 || data.compare(0, 4, "TZif") != 0 || data[4] < '2' || data.back() != '\n')
        return std::nullopt;
    auto start = data.rfind('\n', data.size() - 2);
    if (start == std::string::npos) return std::nullopt;
    auto rule = data.substr(start + 1, data.size() - start - 2);
    if (rule.empty()) return std::nullopt;
    try {
        return Posix::time_zone{rule};
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

// Debian's libdate-tz reads the compiled tzfiles (USE_OS_TZDB) but not the POSIX rule at their
// end, so after the last listed change (2037 in tzdata's files) it would keep that change's
// offset for ever: no daylight saving from 2038 on. From the last change on, the tail rule
// answers instead, through ptz.h of the same library.
struct TimeZone::Rules {
    const date::time_zone* zone = nullptr;
    std::optional<Posix::time_zone> tail;
    date::sys_seconds tail_begin = date::sys_seconds::max();

    date::local_seconds to_local(SysSeconds t) const {
        date::sys_seconds sys{t.time_since_epoch()};
        if (tail && sys >= tail_begin) return tail->to_local(sys);
        return zone->to_local(sys);
    }

    date::local_info get_info(date::local_seconds local) const {
        auto info = zone->get_info(local);
        if (tail && info.first.begin >= tail_begin) return tail->get_info(local);
        return info;
    }

    std::chrono::seconds offset_at(SysSeconds t) const {
        date::sys_seconds sys{t.time_since_epoch()};
        if (tail && sys >= tail_begin) return tail->get_info(sys).offset;
        return zone->get_info(sys).offset;
    }
};

namespace {

// The instant a matching local minute fires at: its only instant; the end of the gap when a
// change skipped it; its first instant when a change repeats it.
SysSeconds resolve(const TimeZone::Rules* rules, date::local_seconds local) {
    if (rules == nullptr) return SysSeconds{local.time_since_epoch()};
    auto info = rules->get_info(local);
    switch (info.result) {
        case date::local_info::nonexistent:
            return SysSeconds{info.second.begin.time_since_epoch()};
        case date::local_info::unique:
        case date::local_info::ambiguous:
        default:
            return SysSeconds{local.time_since_epoch() - info.first.offset};
    }
}

bool is_zone_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '_' || c == '+' || c == '-';
}

}  // namespace

CronExpression parse_cron(std::string_view text) {
    auto words = split_blanks(text);
    if (words.empty()) refuse(text, fmt::format("it is empty ({})", expected_forms));
    if (words[0].front() == '@') {
        std::string macro;
        for (char c : words[0])
            macro += lower(c);
        if (macro == "@every") {
            if (words.size() != 2) refuse(text, "@every takes one DURATION (@every 5m)");
            return parse_every(text, words[1]);
        }
        static constexpr std::array<std::pair<const char*, const char*>, 7> macros{{
            {"@hourly", "0 * * * *"},
            {"@daily", "0 0 * * *"},
            {"@midnight", "0 0 * * *"},
            {"@weekly", "0 0 * * 0"},
            {"@monthly", "0 0 1 * *"},
            {"@yearly", "0 0 1 1 *"},
            {"@annually", "0 0 1 1 *"},
        }};
        for (auto [name, fields_text] : macros) {
            if (macro != name) continue;
            if (words.size() != 1) refuse(text, fmt::format("{} takes no fields after it", name));
            return parse_fields(fields_text, split_blanks(fields_text));
        }
        refuse(text, fmt::format("unknown '{}' ({})", printable(words[0], 20), expected_forms));
    }
    if (words.size() != 5)
        refuse(text, fmt::format("{} field{} ({})", words.size(), words.size() == 1 ? "" : "s",
                                 expected_forms));
    return parse_fields(text, words);
}

TimeZone TimeZone::named(std::string_view name) {
    auto refuse_zone = [&](std::string_view why) {
        throw UsageError(fmt::format("invalid time zone '{}': {}", printable(name, 80), why));
    };
    if (name.empty()) refuse_zone("is empty");
    if (name == "UTC") return TimeZone{};
    if (name.size() > max_zone_name)
        refuse_zone(fmt::format("is longer than {} characters", max_zone_name));
    // Checked before the database sees it: names are words joined by '/', never a path of
    // our own choosing ("..", a leading '/').
    for (char c : name)
        if (!is_zone_char(c))
            refuse_zone("may hold only letters, digits, '/', '_', '+' and '-' (Europe/Berlin)");
    if (name.front() == '/' || name.back() == '/' || name.find("//") != name.npos)
        refuse_zone("is not a zone name (Europe/Berlin, America/New_York, UTC)");
    auto rules = std::make_shared<Rules>();
    try {
        rules->zone = date::locate_zone(name);
    } catch (const std::exception&) {
        refuse_zone("not in the IANA time zone database (/usr/share/zoneinfo)");
    }
    rules->tail = tail_rule(name);
    if (rules->tail) {
        // The last listed change: the start of the period that the far future falls in.
        rules->tail_begin = rules->zone->get_info(date::sys_days{date::year{9000} / 1 / 1}).begin;
    }
    TimeZone zone;
    zone.rules_ = std::move(rules);
    zone.name_ = std::string(name);
    return zone;
}

std::chrono::seconds TimeZone::offset_at(SysSeconds t) const {
    if (rules_ == nullptr) return 0s;
    return rules_->offset_at(t);
}

std::optional<SysSeconds> next_tick(const CronExpression& expression, const TimeZone& zone,
                                    SysSeconds after) {
    if (expression.every.count() > 0) {
        auto period = expression.every.count();
        auto t = after.time_since_epoch().count();
        auto floored = t / period - ((t % period != 0 && t < 0) ? 1 : 0);
        return SysSeconds{std::chrono::seconds{(floored + 1) * period}};
    }
    // Walk the local wall clock forward from the minute after AFTER's: matches are defined on
    // it, and a match whose instant is not after AFTER (a repeated hour's second pass) is
    // skipped as already fired.
    date::local_seconds local{after.time_since_epoch()};
    if (zone.rules_ != nullptr) local = zone.rules_->to_local(after);
    auto start = std::chrono::floor<std::chrono::minutes>(local) + 1min;
    auto day = std::chrono::floor<date::days>(start);
    auto first_minute =
        static_cast<int>(std::chrono::duration_cast<std::chrono::minutes>(start - day).count());
    for (int i = 0; i < search_days; ++i, day += date::days{1}, first_minute = 0) {
        if (!day_matches(expression, day)) continue;
        for (int minute_of_day = first_minute; minute_of_day < 24 * 60; ++minute_of_day) {
            if (!expression.hours[static_cast<std::size_t>(minute_of_day / 60)]) {
                minute_of_day = (minute_of_day / 60) * 60 + 59;  // on to the next hour
                continue;
            }
            if (!expression.minutes[static_cast<std::size_t>(minute_of_day % 60)]) continue;
            auto instant = resolve(zone.rules_.get(),
                                   date::local_seconds{day} + std::chrono::minutes{minute_of_day});
            if (instant > after) return instant;
        }
    }
    return std::nullopt;
}

}  // namespace workq
