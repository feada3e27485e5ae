// Cron expressions as crontab(5) writes them, IANA time zones, and "the next tick after T":
// what workq-schedule stores and what workers fire (CONTRACT.md section 11). Pure functions of
// their arguments; the only outside input is the zone database under /usr/share/zoneinfo, read
// by Howard Hinnant's date/tz library the first time a zone other than UTC is named.
#pragma once

#include <bitset>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace workq {

using SysSeconds = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;

// How a restricted day of month and a restricted day of week combine. crontab(5): when both
// fields are restricted (neither starts with '*'), a day matching either one matches; otherwise
// a day must match both (the '*' side matching every day).
enum class DayRule { both, either };

// A parsed expression: the five fields as sets of allowed values, or a fixed period (@every).
struct CronExpression {
    std::bitset<60> minutes;
    std::bitset<24> hours;
    std::bitset<32> days_of_month;  // 1..31; bit 0 unused
    std::bitset<13> months;         // 1..12; bit 0 unused
    std::bitset<7> days_of_week;    // 0 = Sunday .. 6 = Saturday (7 in the text is Sunday too)
    DayRule day_rule = DayRule::both;
    // @every DURATION: nonzero, whole seconds. Ticks fall on the multiples of the period since
    // the Unix epoch, so that the same expression names the same ticks on every host and
    // whenever the schedule was (re)defined. The five fields are unused then.
    std::chrono::seconds every{0};

    bool operator==(const CronExpression&) const = default;
};

// Parses EXPR: five fields separated by blanks (minute 0-59, hour 0-23, day of month 1-31,
// month 1-12 or jan..dec, day of week 0-7 or sun..sat), each a comma-separated list of `*`,
// N, N-M, with an optional /STEP (`*/15`, `1-30/2`; `N/STEP` means N to the field's maximum);
// names in any case. Or one of @hourly, @daily (@midnight), @weekly, @monthly, @yearly
// (@annually), `@every DURATION` (whole seconds, at least 1s). Throws UsageError naming the
// field and what is wrong with it: "invalid cron expression '61 * * * *': the minute field
// '61': 61 is out of range 0-59".
CronExpression parse_cron(std::string_view text);

// An IANA time zone, or UTC (which needs no zone database).
class TimeZone {
  public:
    // UTC.
    TimeZone() = default;

    // Looks NAME up in the zone database ("Europe/Berlin", "UTC", "Etc/GMT+5"). Throws
    // UsageError naming it when it is malformed or not in the database.
    static TimeZone named(std::string_view name);

    // The name as given ("UTC" for the default).
    const std::string& name() const { return name_; }
    bool is_utc() const { return rules_ == nullptr; }

    // The zone's UTC offset at T (0 for UTC).
    std::chrono::seconds offset_at(SysSeconds t) const;

    // The rules: date/tz's zone, and beyond the last change its tzfile lists, the POSIX rule
    // the file ends with (defined in cron.cpp).
    struct Rules;

  private:
    friend std::optional<SysSeconds> next_tick(const CronExpression&, const TimeZone&, SysSeconds);
    std::shared_ptr<const Rules> rules_;  // null: UTC
    std::string name_ = "UTC";
};

// The first tick strictly after AFTER. Fields are matched against the zone's local wall clock;
// a local time that a daylight-saving change skips fires at the first minute after the gap
// (several skipped matches fire once there); a local time that a change repeats fires once, at
// its first occurrence. nullopt when nothing matches in the next 50 years (`0 0 30 2 *`).
std::optional<SysSeconds> next_tick(const CronExpression& expression, const TimeZone& zone,
                                    SysSeconds after);

}  // namespace workq
