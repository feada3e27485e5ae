#include "util/duration.hpp"

#include <gtest/gtest.h>

#include "util/errors.hpp"

using namespace workq;
using namespace std::chrono_literals;

TEST(Duration, ParsesUnitsDecimalsAndCompounds) {
    EXPECT_EQ(parse_duration("500ms"), 500ms);
    EXPECT_EQ(parse_duration("30s"), 30s);
    EXPECT_EQ(parse_duration("1.5s"), 1500ms);
    EXPECT_EQ(parse_duration("5m"), 5min);
    EXPECT_EQ(parse_duration("2h"), 2h);
    EXPECT_EQ(parse_duration("1d"), 24h);
    EXPECT_EQ(parse_duration("1h30m"), 90min);
    EXPECT_EQ(parse_duration("1m30s500ms"), 90500ms);
    EXPECT_EQ(parse_duration("90"), 90s);
    EXPECT_EQ(parse_duration("2.5"), 2500ms);
    EXPECT_EQ(parse_duration("0"), 0ms);
    EXPECT_EQ(parse_duration(".5s"), 500ms);
}

TEST(Duration, RefusesMalformedText) {
    for (const char* bad :
         {"", "s", "-5s", "5x", "1h30", "5 s", "1..5s", "abc", "1e3s", ".", "5sm", "99999999999d"})
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(Duration, ThrowsUsageErrorNamingTheFlag) {
    try {
        parse_duration_or_throw("soon", "--timeout");
        FAIL() << "no exception";
    } catch (const UsageError& error) {
        EXPECT_NE(std::string(error.what()).find("--timeout"), std::string::npos);
        EXPECT_NE(std::string(error.what()).find("soon"), std::string::npos);
    }
}

TEST(Duration, FormatsRoundTrip) {
    EXPECT_EQ(format_duration(90min), "1h30m");
    EXPECT_EQ(format_duration(250ms), "250ms");
    EXPECT_EQ(format_duration(0ms), "0s");
    for (Millis value : {Millis(1), Millis(999), Millis(61000), Millis(3601000),
                         Millis(49 * 3600000), Millis(1234567)})
        EXPECT_EQ(parse_duration(format_duration(value)), value);
}

TEST(Duration, ParsesFractionsInsideCompoundsAndRepeatedUnits) {
    EXPECT_EQ(parse_duration("1.5h"), 90min);
    EXPECT_EQ(parse_duration("1h0.5m"), 3630s);
    EXPECT_EQ(parse_duration("0.25ms"), 0ms);  // below a millisecond rounds
    EXPECT_EQ(parse_duration("0.5ms"), 1ms);
    EXPECT_EQ(parse_duration("0ms"), 0ms);
    EXPECT_EQ(parse_duration("0s"), 0ms);
    EXPECT_EQ(parse_duration("1d2h3m4s5ms"), 93784005ms);
}

TEST(Duration, RefusesUppercaseUnitsWhitespaceAndStrayText) {
    for (const char* bad : {"5S", "5M", "1H", "5sec", "5min", "5 ", " 5", "5s\n", "1h 30m", "ms",
                            "1.5.5s", "1h-30m", "+5s", "5s5", "1_000s", "0x10s"})
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(Duration, AcceptsUpToACentury) {
    EXPECT_EQ(parse_duration("36500d"), Millis(36500LL * 86'400'000));
    EXPECT_FALSE(parse_duration("36501d").has_value());
    EXPECT_FALSE(parse_duration("36500d1ms").has_value());
}

TEST(Duration, ErrorMessagesShowControlCharactersEscaped) {
    try {
        parse_duration_or_throw("5\x1b[2J", "--delay");
        FAIL() << "no exception";
    } catch (const UsageError& error) {
        std::string message = error.what();
        EXPECT_EQ(message.find('\x1b'), std::string::npos) << message;
        EXPECT_NE(message.find("5\\x1b[2J"), std::string::npos) << message;
        EXPECT_NE(message.find("--delay"), std::string::npos) << message;
    }
}

TEST(Duration, FormatsShortFormsForTables) {
    EXPECT_EQ(format_duration_short(250ms), "0.25s");
    EXPECT_EQ(format_duration_short(0ms), "0.00s");
    EXPECT_EQ(format_duration_short(-5s), "0.00s");  // a clock step never shows as negative
    EXPECT_EQ(format_duration_short(3s), "3s");
    EXPECT_EQ(format_duration_short(3999ms), "3s");
    EXPECT_EQ(format_duration_short(252s), "4m12s");
    EXPECT_EQ(format_duration_short(60s), "1m00s");
    EXPECT_EQ(format_duration_short(2h + 5min), "2h05m");
    EXPECT_EQ(format_duration_short(76h), "3d4h");
}

TEST(Duration, FormatsNegativeDurationsWithASign) {
    EXPECT_EQ(format_duration(-90s), "-1m30s");
}
