#include "util/text.hpp"

#include <gtest/gtest.h>

using namespace workq;

TEST(Text, Utf8Validity) {
    EXPECT_TRUE(is_valid_utf8(""));
    EXPECT_TRUE(is_valid_utf8("plain ascii"));
    EXPECT_TRUE(is_valid_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
    EXPECT_TRUE(is_valid_utf8(std::string("nul\0inside", 10)));
    EXPECT_FALSE(is_valid_utf8("\xff"));
    EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated
    EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
    EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
    EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
}

TEST(Text, Base64RoundTripsEveryLength) {
    std::string bytes;
    for (int i = 0; i < 300; ++i) {
        auto encoded = base64_encode(bytes);
        EXPECT_EQ(encoded.size() % 4, 0u);
        auto decoded = base64_decode(encoded);
        ASSERT_TRUE(decoded) << i;
        EXPECT_EQ(*decoded, bytes);
        bytes += static_cast<char>(i * 37);
    }
    EXPECT_EQ(base64_encode("Man"), "TWFu");
    EXPECT_EQ(base64_encode("Ma"), "TWE=");
    EXPECT_FALSE(base64_decode("not base64!"));
    EXPECT_FALSE(base64_decode("A"));
}

TEST(Text, OneLineEscapesControlsKeepsUtf8AndCuts) {
    EXPECT_EQ(one_line("first\nsecond", 80), "first …");
    EXPECT_EQ(one_line("tab\there", 80), "tab\\there");
    EXPECT_EQ(one_line("\x1b[31mred", 80), "\\x1b[31mred");
    EXPECT_EQ(one_line("h\xc3\xa9llo", 80), "h\xc3\xa9llo");
    EXPECT_EQ(one_line("\xff", 80), "\\xff");
    EXPECT_EQ(one_line("abcdef", 3), "abc…");
    // C1 controls, which some terminals obey (U+009B is CSI), found by tests/fuzz/names_fuzz.
    EXPECT_EQ(one_line("\xc2\x9b"
                       "2J",
                       80),
              "\\u009b2J");
    EXPECT_EQ(one_line("\xc2\x85", 80), "\\u0085");
    EXPECT_EQ(one_line("\xc2\xa0", 80), "\xc2\xa0");  // U+00A0 is printable
}

TEST(Text, EditDistanceCountsSingleByteEdits) {
    EXPECT_EQ(workq::edit_distance("", ""), 0U);
    EXPECT_EQ(workq::edit_distance("ls", "ls"), 0U);
    EXPECT_EQ(workq::edit_distance("", "ls"), 2U);
    EXPECT_EQ(workq::edit_distance("reqeue", "requeue"), 1U);
    EXPECT_EQ(workq::edit_distance("pasue", "pause"), 2U);
    EXPECT_EQ(workq::edit_distance("kitten", "sitting"), 3U);
}

TEST(Text, PrometheusLabelEscapesBackslashQuoteAndNewline) {
    EXPECT_EQ(workq::prometheus_label("plain-queue.1"), "plain-queue.1");
    EXPECT_EQ(workq::prometheus_label("a\\b"), "a\\\\b");
    EXPECT_EQ(workq::prometheus_label("say \"hi\""), "say \\\"hi\\\"");
    EXPECT_EQ(workq::prometheus_label("two\nlines"), "two\\nlines");
    EXPECT_EQ(workq::prometheus_label("\\\"\n"), "\\\\\\\"\\n");
    // Anything else as it is: tabs, carriage returns and UTF-8 are legal in a label value.
    EXPECT_EQ(workq::prometheus_label("t\tr\r h\xc3\xa9"), "t\tr\r h\xc3\xa9");
    EXPECT_EQ(workq::prometheus_label(""), "");
}
