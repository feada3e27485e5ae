#include "util/cron.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "util/errors.hpp"
#include "util/time.hpp"

using namespace workq;
using namespace std::chrono_literals;

namespace {

SysSeconds at(const char* rfc3339) {
    auto ms = parse_time(rfc3339);
    EXPECT_TRUE(ms.has_value()) << rfc3339;
    return SysSeconds{std::chrono::seconds{ms.value_or(0) / 1000}};
}

std::string text(SysSeconds t) {
    return format_rfc3339(
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

// The next COUNT ticks after START, as RFC 3339 in UTC.
std::vector<std::string> ticks(const char* expression, const char* zone, const char* start,
                               int count) {
    auto parsed = parse_cron(expression);
    auto tz = TimeZone::named(zone);
    std::vector<std::string> out;
    auto t = at(start);
    for (int i = 0; i < count; ++i) {
        auto next = next_tick(parsed, tz, t);
        if (!next) break;
        out.push_back(text(*next));
        t = *next;
    }
    return out;
}

std::string problem(const char* expression) {
    try {
        parse_cron(expression);
    } catch (const UsageError& error) {
        return error.what();
    }
    return "(accepted)";
}

}  // namespace

TEST(Cron, ParsesFieldsListsRangesAndSteps) {
    auto e = parse_cron("*/15 9-17 1,15 * mon-fri");
    for (std::size_t m = 0; m < 60; ++m)
        EXPECT_EQ(e.minutes[m], m % 15 == 0) << m;
    for (std::size_t h = 0; h < 24; ++h)
        EXPECT_EQ(e.hours[h], h >= 9 && h <= 17) << h;
    EXPECT_TRUE(e.days_of_month[1] && e.days_of_month[15]);
    EXPECT_EQ(e.days_of_month.count(), 2u);
    EXPECT_EQ(e.months.count(), 12u);
    EXPECT_FALSE(e.months[0]);
    EXPECT_EQ(e.days_of_week.to_string(), "0111110");
    EXPECT_EQ(e.day_rule, DayRule::either);

    EXPECT_EQ(parse_cron("0 0 1-30/10 * *").days_of_month.count(), 3u);  // 1, 11, 21
    EXPECT_EQ(parse_cron("50/5 * * * *").minutes.count(), 2u);           // 50, 55
    EXPECT_EQ(parse_cron("0 0 * JAN,jul *").months.count(), 2u);
    EXPECT_EQ(parse_cron("0 0 * feb-APR/2 *").months.count(), 2u);  // feb, apr
    EXPECT_EQ(parse_cron("\t0  0 * *   *  ").minutes.count(), 1u);
}

TEST(Cron, SevenIsSundayToo) {
    EXPECT_EQ(parse_cron("0 0 * * 7"), parse_cron("0 0 * * 0"));
    EXPECT_EQ(parse_cron("0 0 * * 5-7"), parse_cron("0 0 * * fri,sat,sun"));
    EXPECT_EQ(parse_cron("0 0 * * 0-7").days_of_week.count(), 7u);
    // A range that ends on Sunday ends on 7 (fri-sun is Friday to Sunday).
    EXPECT_EQ(parse_cron("0 0 * * fri-sun"), parse_cron("0 0 * * 5-7"));
    EXPECT_EQ(parse_cron("0 0 * * 6-0"), parse_cron("0 0 * * 6,7"));
    EXPECT_EQ(parse_cron("0 0 * * 1/2"), parse_cron("0 0 * * 1,3,5,7"));
    EXPECT_EQ(parse_cron("0 0 * * */2").days_of_week.to_string(), "1010101");  // 0 2 4 6
}

TEST(Cron, DayFieldsCombineWithOrOnlyWhenBothAreRestricted) {
    EXPECT_EQ(parse_cron("0 0 13 * fri").day_rule, DayRule::either);
    EXPECT_EQ(parse_cron("0 0 * * fri").day_rule, DayRule::both);
    EXPECT_EQ(parse_cron("0 0 13 * *").day_rule, DayRule::both);
    // cron looks at the first character: a stepped star is unrestricted.
    EXPECT_EQ(parse_cron("0 0 */2 * fri").day_rule, DayRule::both);
    // Friday the 13th or any Friday or any 13th: the 13th of September 2024 is a Friday.
    EXPECT_EQ(ticks("0 0 13 * fri", "UTC", "2024-09-01T00:00:00Z", 4),
              (std::vector<std::string>{"2024-09-06T00:00:00.000Z", "2024-09-13T00:00:00.000Z",
                                        "2024-09-20T00:00:00.000Z", "2024-09-27T00:00:00.000Z"}));
    // Odd days that are Fridays.
    EXPECT_EQ(ticks("0 0 */2 * fri", "UTC", "2024-09-01T00:00:00Z", 2),
              (std::vector<std::string>{"2024-09-13T00:00:00.000Z", "2024-09-27T00:00:00.000Z"}));
}

TEST(Cron, Macros) {
    EXPECT_EQ(parse_cron("@hourly"), parse_cron("0 * * * *"));
    EXPECT_EQ(parse_cron("@daily"), parse_cron("0 0 * * *"));
    EXPECT_EQ(parse_cron("@midnight"), parse_cron("0 0 * * *"));
    EXPECT_EQ(parse_cron("@weekly"), parse_cron("0 0 * * 0"));
    EXPECT_EQ(parse_cron("@monthly"), parse_cron("0 0 1 * *"));
    EXPECT_EQ(parse_cron("@yearly"), parse_cron("0 0 1 1 *"));
    EXPECT_EQ(parse_cron("@ANNUALLY"), parse_cron("0 0 1 1 *"));
    EXPECT_EQ(parse_cron("@every 1m30s").every, 90s);
    EXPECT_EQ(parse_cron("@every 1").every, 1s);
}

TEST(Cron, RefusesMalformedExpressionsNamingTheField) {
    struct Case {
        const char* expression;
        const char* message;
    };
    for (auto [expression, message] : std::vector<Case>{
             {"", "it is empty"},
             {"* * * *", "4 fields"},
             {"* * * * * *", "6 fields"},
             {"60 * * * *", "the minute field '60': 60 is out of range 0-59"},
             {"* 24 * * *", "the hour field '24': 24 is out of range 0-23"},
             {"* * 0 * *", "the day-of-month field '0': 0 is out of range 1-31"},
             {"* * 32 * *", "the day-of-month field '32'"},
             {"* * * 13 *", "the month field '13': 13 is out of range 1-12"},
             {"* * * 0 *", "the month field '0'"},
             {"* * * * 8", "the day-of-week field '8': 8 is out of range 0-7"},
             {"* * * foo *", "the month field 'foo': 'foo' is neither a number nor a month name"},
             {"* * * * sunday", "the day-of-week field 'sunday': 'sunday' is neither a number"},
             {"mon * * * *", "the minute field 'mon': 'mon' is not a number"},
             {"1,,2 * * * *", "the minute field '1,,2': a list has an empty item"},
             {"1, * * * *", "a list has an empty item"},
             {"5-2 * * * *", "the minute field '5-2': the range 5-2 runs backwards"},
             {"*/0 * * * *", "a step of 0 never advances"},
             {"*/x * * * *", "the step 'x' is not a positive number"},
             {"*/ * * * *", "the step '' is not a positive number"},
             {"*/-1 * * * *", "the step '-1' is not a positive number"},
             {"1- * * * *", "a range or step is missing a number"},
             {"-1 * * * *", "a range or step is missing a number"},
             {"? * * * *", "'?' is not a number"},
             {"* * L * *", "the day-of-month field 'L'"},
             {"* * * * 1#2", "the day-of-week field '1#2'"},
             {"99999999999 * * * *", "the minute field '99999999999'"},
             {"@reboot", "unknown '@reboot'"},
             {"@hourly *", "@hourly takes no fields after it"},
             {"@every", "@every takes one DURATION"},
             {"@every 5x", "@every: '5x' is not a duration"},
             {"@every 1500ms", "@every: the period must be whole seconds, at least 1s"},
             {"@every 0", "at least 1s"},
         }) {
        auto got = problem(expression);
        EXPECT_NE(got.find(message), std::string::npos) << expression << " -> " << got;
        EXPECT_EQ(got.find("invalid cron expression"), 0u) << got;
    }
}

TEST(Cron, NextTickInUtc) {
    EXPECT_EQ(ticks("*/15 * * * *", "UTC", "2024-01-01T10:07:30Z", 3),
              (std::vector<std::string>{"2024-01-01T10:15:00.000Z", "2024-01-01T10:30:00.000Z",
                                        "2024-01-01T10:45:00.000Z"}));
    // Strictly after: a start on a tick gives the next one.
    EXPECT_EQ(ticks("0 * * * *", "UTC", "2024-01-01T10:00:00Z", 1),
              (std::vector<std::string>{"2024-01-01T11:00:00.000Z"}));
    EXPECT_EQ(ticks("@yearly", "UTC", "2024-06-01T00:00:00Z", 1),
              (std::vector<std::string>{"2025-01-01T00:00:00.000Z"}));
    // February 29th comes every four years, and not in 2100.
    EXPECT_EQ(ticks("0 0 29 2 *", "UTC", "2097-01-01T00:00:00Z", 1),
              (std::vector<std::string>{"2104-02-29T00:00:00.000Z"}));
    // The rarest day that exists: February 29th on a Sunday, 40 years apart across 2100.
    EXPECT_EQ(ticks("0 0 29 2 */7", "UTC", "2088-03-01T00:00:00Z", 1),
              (std::vector<std::string>{"2128-02-29T00:00:00.000Z"}));
    EXPECT_EQ(ticks("0 0 31 * *", "UTC", "2024-04-01T00:00:00Z", 2),
              (std::vector<std::string>{"2024-05-31T00:00:00.000Z", "2024-07-31T00:00:00.000Z"}));
}

TEST(Cron, AnExpressionThatNeverFiresHasNoNextTick) {
    EXPECT_FALSE(next_tick(parse_cron("0 0 30 2 *"), TimeZone{}, at("2024-01-01T00:00:00Z")));
    EXPECT_FALSE(
        next_tick(parse_cron("0 0 31 4,6,9,11 *"), TimeZone{}, at("2024-01-01T00:00:00Z")));
}

TEST(Cron, EveryIsAlignedToTheEpoch) {
    auto every = parse_cron("@every 1m");
    EXPECT_EQ(text(*next_tick(every, TimeZone{}, at("2024-01-01T10:07:30Z"))),
              "2024-01-01T10:08:00.000Z");
    EXPECT_EQ(text(*next_tick(every, TimeZone{}, at("2024-01-01T10:08:00Z"))),
              "2024-01-01T10:09:00.000Z");
    auto seven = parse_cron("@every 7s");
    auto next = next_tick(seven, TimeZone{}, SysSeconds{100s});
    EXPECT_EQ(next->time_since_epoch(), 105s);
    // A zone changes nothing for a fixed period, across a daylight-saving change too.
    EXPECT_EQ(next_tick(parse_cron("@every 1h"), TimeZone::named("Europe/Berlin"),
                        at("2024-03-31T00:30:00Z")),
              at("2024-03-31T01:00:00Z"));
}

TEST(Cron, DaylightSavingInBerlin) {
    // 2024-03-31: 02:00 CET becomes 03:00 CEST (01:00Z). 02:30 does not exist that night: it
    // fires at the first minute after the gap.
    EXPECT_EQ(ticks("30 2 * * *", "Europe/Berlin", "2024-03-30T12:00:00Z", 3),
              (std::vector<std::string>{"2024-03-31T01:00:00.000Z", "2024-04-01T00:30:00.000Z",
                                        "2024-04-02T00:30:00.000Z"}));
    // Several matches in the gap fire once.
    EXPECT_EQ(ticks("*/20 2 * * *", "Europe/Berlin", "2024-03-30T23:59:00Z", 2),
              (std::vector<std::string>{"2024-03-31T01:00:00.000Z", "2024-04-01T00:00:00.000Z"}));
    // 2024-10-27: 03:00 CEST becomes 02:00 CET (01:00Z). 02:30 happens twice: it fires once,
    // the first time.
    EXPECT_EQ(ticks("30 2 * * *", "Europe/Berlin", "2024-10-26T12:00:00Z", 2),
              (std::vector<std::string>{"2024-10-27T00:30:00.000Z", "2024-10-28T01:30:00.000Z"}));
    // Started during the second pass, after the first 02:30 fired: the next day's.
    EXPECT_EQ(ticks("30 2 * * *", "Europe/Berlin", "2024-10-27T01:10:00Z", 1),
              (std::vector<std::string>{"2024-10-28T01:30:00.000Z"}));
    // Started during the first pass, before 02:30: that one.
    EXPECT_EQ(ticks("30 2 * * *", "Europe/Berlin", "2024-10-27T00:10:00Z", 1),
              (std::vector<std::string>{"2024-10-27T00:30:00.000Z"}));
    // Every hour's minute 0 in local time: the repeated 02:00 fires once.
    EXPECT_EQ(ticks("0 * * * *", "Europe/Berlin", "2024-10-26T23:30:00Z", 3),
              (std::vector<std::string>{"2024-10-27T00:00:00.000Z", "2024-10-27T02:00:00.000Z",
                                        "2024-10-27T03:00:00.000Z"}));
}

TEST(Cron, DaylightSavingInNewYorkAndLordHowe) {
    // 2024-03-10 02:00 EST becomes 03:00 EDT (07:00Z); 2024-11-03 02:00 EDT becomes 01:00 EST.
    EXPECT_EQ(ticks("30 2 * * *", "America/New_York", "2024-03-09T12:00:00Z", 2),
              (std::vector<std::string>{"2024-03-10T07:00:00.000Z", "2024-03-11T06:30:00.000Z"}));
    EXPECT_EQ(ticks("30 1 * * *", "America/New_York", "2024-11-02T12:00:00Z", 2),
              (std::vector<std::string>{"2024-11-03T05:30:00.000Z", "2024-11-04T06:30:00.000Z"}));
    // Lord Howe moves by half an hour: 2024-10-06 02:00 (+10:30) becomes 02:30 (+11), and
    // 2024-04-07 02:00 (+11) becomes 01:30 (+10:30).
    EXPECT_EQ(ticks("15 2 * * *", "Australia/Lord_Howe", "2024-10-05T00:00:00Z", 2),
              (std::vector<std::string>{"2024-10-05T15:30:00.000Z", "2024-10-06T15:15:00.000Z"}));
    EXPECT_EQ(ticks("45 1 * * *", "Australia/Lord_Howe", "2024-04-06T00:00:00Z", 2),
              (std::vector<std::string>{"2024-04-06T14:45:00.000Z", "2024-04-07T15:15:00.000Z"}));
}

TEST(Cron, TimeZones) {
    EXPECT_TRUE(TimeZone{}.is_utc());
    EXPECT_EQ(TimeZone{}.name(), "UTC");
    EXPECT_TRUE(TimeZone::named("UTC").is_utc());
    auto berlin = TimeZone::named("Europe/Berlin");
    EXPECT_EQ(berlin.name(), "Europe/Berlin");
    EXPECT_EQ(berlin.offset_at(at("2024-01-15T00:00:00Z")), 1h);
    EXPECT_EQ(berlin.offset_at(at("2024-07-15T00:00:00Z")), 2h);
    // Beyond the last change that tzdata's files list (2037), the rule at their end goes on.
    EXPECT_EQ(berlin.offset_at(at("2040-07-15T00:00:00Z")), 2h);
    EXPECT_EQ(berlin.offset_at(at("2040-12-15T00:00:00Z")), 1h);
    EXPECT_EQ(ticks("30 2 * * *", "Europe/Berlin", "2045-03-25T12:00:00Z", 2),
              (std::vector<std::string>{"2045-03-26T01:00:00.000Z", "2045-03-27T00:30:00.000Z"}));
    EXPECT_EQ(ticks("0 9 * * *", "Asia/Kolkata", "2024-01-01T00:00:00Z", 1),
              (std::vector<std::string>{"2024-01-01T03:30:00.000Z"}));
    for (const char* bad :
         {"", "Mars/Olympus", "Europe/berlin", "../../etc/passwd", "/usr/share/zoneinfo/UTC",
          "Europe//Berlin", "Europe/Berlin ", "Europe/Berlin\n"}) {
        try {
            TimeZone::named(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const UsageError& error) {
            EXPECT_EQ(std::string(error.what()).find("invalid time zone"), 0u) << error.what();
        }
    }
}
