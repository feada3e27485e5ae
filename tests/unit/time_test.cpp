#include "util/time.hpp"

#include <gtest/gtest.h>

#include <ctime>

#include <cstdlib>

using namespace workq;

namespace {

// 2025-11-25T10:00:00Z in epoch milliseconds (checked with `date -u -d @1764064800`).
constexpr long long nov25 = 1'764'064'800'000LL;

}  // namespace

TEST(Time, ParsesRfc3339InUtc) {
    EXPECT_EQ(parse_time("2025-11-25T10:00:00Z"), nov25);
    EXPECT_EQ(parse_time("2025-11-25t10:00:00z"), nov25);
    EXPECT_EQ(parse_time("1970-01-01T00:00:00Z"), 0);
    EXPECT_EQ(parse_time("2000-02-29T12:34:56Z"), 951'827'696'000LL);  // a leap day
    EXPECT_EQ(parse_time("2026-12-31T23:59:59Z"), 1'798'761'599'000LL);
}

TEST(Time, ALeapSecondIsTheFirstSecondOfTheNextMinute) {
    EXPECT_EQ(parse_time("2016-12-31T23:59:60Z"), parse_time("2017-01-01T00:00:00Z"));
}

TEST(Time, ParsesOffsets) {
    EXPECT_EQ(parse_time("2025-11-25T11:00:00+01:00"), nov25);
    EXPECT_EQ(parse_time("2025-11-25T05:30:00-04:30"), nov25);
    EXPECT_EQ(parse_time("2025-11-25T10:00:00+00:00"), nov25);
    EXPECT_EQ(parse_time("2025-11-25T10:00:00-00:00"), nov25);
    EXPECT_EQ(parse_time("2025-11-26T00:00:00+14:00"), nov25);  // the date line moves the day
}

TEST(Time, ParsesFractions) {
    EXPECT_EQ(parse_time("2025-11-25T10:00:00.5Z"), nov25 + 500);
    EXPECT_EQ(parse_time("2025-11-25T10:00:00.25Z"), nov25 + 250);
    EXPECT_EQ(parse_time("2025-11-25T10:00:00.123Z"), nov25 + 123);
    EXPECT_EQ(parse_time("2025-11-25T10:00:00.123999Z"), nov25 + 123);  // below 1 ms: cut
    EXPECT_EQ(parse_time("2025-11-25T11:00:00.5+01:00"), nov25 + 500);
}

TEST(Time, ParsesASpaceInsteadOfT) {
    EXPECT_EQ(parse_time("2025-11-25 10:00:00Z"), nov25);
    EXPECT_EQ(parse_time("2025-11-25 11:00:00.5+01:00"), nov25 + 500);
}

TEST(Time, ParsesEpochSeconds) {
    EXPECT_EQ(parse_time("1764064800"), nov25);
    EXPECT_EQ(parse_time("1764064800.25"), nov25 + 250);
    EXPECT_EQ(parse_time("1764064800.5"), nov25 + 500);
    EXPECT_EQ(parse_time("1764064800.001"), nov25 + 1);
    EXPECT_EQ(parse_time("1764064800.0019"), nov25 + 1);
    EXPECT_EQ(parse_time("0"), 0);
}

TEST(Time, RefusesMalformedText) {
    for (const char* bad : {
             "",
             "tomorrow",
             "2025-11-25",                 // no time
             "2025-11-25T10:00",           // no seconds
             "2025-11-25T10:00:00+0100",   // offset without ':'
             "2025-11-25T10:00:00+01",     // offset without minutes
             "2025-11-25T10:00:00Zjunk",   // trailing text
             "2025-11-25T10:00:00.Z",      // a '.' without digits
             "2025-11-25X10:00:00Z",       // wrong separator
             "2026-13-01T00:00:00Z",       // month 13
             "2026-00-01T00:00:00Z",       // month 0
             "2026-11-00T00:00:00Z",       // day 0
             "2026-11-32T00:00:00Z",       // day 32
             "2026-02-30T00:00:00Z",       // no such day
             "2026-02-29T00:00:00Z",       // not a leap year
             "2026-04-31T00:00:00Z",       // April has 30 days
             "2025-11-25T24:00:00Z",       // hour 24
             "2025-11-25T10:60:00Z",       // minute 60
             "2025-11-25T10:00:61Z",       // second 61
             "2025-11-25T-1:00:00Z",       // a sign inside a field
             "2025-11-25T10:-1:00Z",       // ...
             "2025-11-25T10:00:-1Z",       // ...
             "2025-11-25T10:00:00+-1:00",  // ...
             "2025-11-25T10:00:00+24:00",  // offset hour out of range
             "2025-11-25T10:00:00+01:60",  // offset minute out of range
             "26-11-25T10:00:00Z",         // two-digit year
             "1969-12-31T23:59:59Z",       // before the epoch
             " 2025-11-25T10:00:00Z",      // leading space
             "-5",                         // negative epoch
             "1764064800.",                // a '.' without digits
             "1764064800.5s",              // junk after the fraction
             "1764064800 ",                // trailing space
             "1e9",                        // exponent
             "+1764064800",                // explicit sign
             "99999999999999999999999",    // overflow
             "100000000001",               // more than 3000 years ahead
             ".5",                         // no whole seconds
         })
        EXPECT_EQ(parse_time(bad), std::nullopt) << "'" << bad << "'";
}

// Runs `body` with TZ set to `zone`, then restores TZ.
template <typename Body>
void in_time_zone(const char* zone, Body body) {
    const char* old = std::getenv("TZ");
    std::string saved = old ? old : "";
    setenv("TZ", zone, 1);
    tzset();
    body();
    if (old)
        setenv("TZ", saved.c_str(), 1);
    else
        unsetenv("TZ");
    tzset();
}

TEST(Time, ATimeWithoutAZoneIsLocalTimeAsDateReadsIt) {
    in_time_zone("Europe/Berlin", [] {
        // Winter: UTC+1; summer: UTC+2.
        EXPECT_EQ(parse_time("2025-11-25T11:00:00"), nov25);
        EXPECT_EQ(parse_time("2025-11-25 11:00:00.250"), nov25 + 250);
        EXPECT_EQ(parse_time("2026-07-01T12:00:00"), parse_time("2026-07-01T10:00:00Z"));
        // 02:30 on the last Sunday of March does not exist there.
        EXPECT_EQ(parse_time("2026-03-29T02:30:00"), std::nullopt);
    });
    in_time_zone("UTC", [] { EXPECT_EQ(parse_time("2025-11-25T10:00:00"), nov25); });
}

TEST(Time, RefusesTimesAfterTheYear9999) {
    // Found by tests/fuzz/time_fuzz: an offset could carry a time past 9999-12-31T23:59:59Z,
    // which format_rfc3339 cannot write back with four digits.
    EXPECT_FALSE(parse_time("9999-12-31T23:59:59-00:01"));
    EXPECT_EQ(parse_time("9999-12-31T23:59:59.999Z"), 253'402'300'799'999LL);
    EXPECT_EQ(parse_time("9999-12-31T23:59:59+01:00"), 253'402'297'199'000LL);
}

TEST(Time, FormatsRfc3339InUtcWithMilliseconds) {
    EXPECT_EQ(format_rfc3339(nov25), "2025-11-25T10:00:00.000Z");
    EXPECT_EQ(format_rfc3339(nov25 + 123), "2025-11-25T10:00:00.123Z");
    EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_rfc3339(951'827'696'007LL), "2000-02-29T12:34:56.007Z");
}

TEST(Time, FormatIgnoresTheLocalTimeZone) {
    const char* old = std::getenv("TZ");
    std::string saved = old ? old : "";
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    auto text = format_rfc3339(nov25);
    if (old)
        setenv("TZ", saved.c_str(), 1);
    else
        unsetenv("TZ");
    tzset();
    EXPECT_EQ(text, "2025-11-25T10:00:00.000Z");
}

TEST(Time, FormatRoundTrips) {
    for (long long ms : {0LL, 1LL, 999LL, nov25, nov25 + 1, nov25 + 999, 951'827'696'007LL,
                         4'102'444'800'000LL /* 2100-01-01 */, 253'402'300'799'999LL})
        EXPECT_EQ(parse_time(format_rfc3339(ms)), ms) << format_rfc3339(ms);
}

TEST(Time, FormatsRelativeTimes) {
    EXPECT_EQ(format_relative(nov25, nov25), "just now");
    EXPECT_EQ(format_relative(nov25, nov25 + 999), "just now");
    EXPECT_EQ(format_relative(nov25, nov25 + 3'000), "3s ago");
    EXPECT_EQ(format_relative(nov25, nov25 + 252'000), "4m12s ago");
    EXPECT_EQ(format_relative(nov25, nov25 + 2 * 3'600'000 + 5 * 60'000), "2h05m ago");
    EXPECT_EQ(format_relative(nov25, nov25 + 3 * 86'400'000 + 4 * 3'600'000), "3d4h ago");
    EXPECT_EQ(format_relative(nov25 + 252'000, nov25), "in 4m12s");
    EXPECT_EQ(format_relative(nov25 + 3'000, nov25), "in 3s");
    EXPECT_EQ(format_relative(nov25 + 250, nov25), "in 0.25s");
}
