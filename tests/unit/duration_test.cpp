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
