#include "util/bytes.hpp"

#include <gtest/gtest.h>

using namespace workq;

TEST(Bytes, ParsesPlainNumbers) {
    EXPECT_EQ(parse_size("0"), 0u);
    EXPECT_EQ(parse_size("1"), 1u);
    EXPECT_EQ(parse_size("1048576"), 1048576u);
    EXPECT_EQ(parse_size("4096B"), 4096u);
    EXPECT_EQ(parse_size("7b"), 7u);
}

TEST(Bytes, ParsesBinaryMultiples) {
    for (const char* unit : {"k", "K", "KiB", "KB", "kB"})
        EXPECT_EQ(parse_size(std::string("512") + unit), 512u * 1024) << unit;
    for (const char* unit : {"M", "m", "MiB", "MB"})
        EXPECT_EQ(parse_size(std::string("1") + unit), 1024u * 1024) << unit;
    for (const char* unit : {"G", "g", "GiB", "GB"})
        EXPECT_EQ(parse_size(std::string("2") + unit), 2ull * 1024 * 1024 * 1024) << unit;
}

TEST(Bytes, AcceptsUpToOneTebibyte) {
    EXPECT_EQ(parse_size("1024G"), std::size_t{1} << 40);
    EXPECT_EQ(parse_size("1099511627776"), std::size_t{1} << 40);
    EXPECT_EQ(parse_size("1025G"), std::nullopt);
    EXPECT_EQ(parse_size("1099511627777"), std::nullopt);
    EXPECT_EQ(parse_size("1048577M"), std::nullopt);
    EXPECT_EQ(parse_size("18446744073709551615"), std::nullopt);
    EXPECT_EQ(parse_size("99999999999999999999999"), std::nullopt);  // beyond size_t
}

TEST(Bytes, RefusesMalformedText) {
    for (const char* bad :
         {"",     "M",   "KiB",   "-1",  "-1M", "+1",  "1.5M", ".5M", "1 M",   " 1",    "1 ", "1T",
          "1TiB", "1Mi", "1MiBs", "1kb", "1mb", "abc", "0x10", "1e6", "1,000", "1_000", "1MM"})
        EXPECT_EQ(parse_size(bad), std::nullopt) << "'" << bad << "'";
}
