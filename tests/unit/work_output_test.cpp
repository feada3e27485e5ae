// tools/work/output.hpp: the stderr relay, the error tail and the bounded result that the
// per-job and persistent handlers share.
#include "output.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace workq::work {
namespace {

struct Relayed {
    std::vector<std::pair<std::string, std::string>> lines;
    StderrRelay relay() {
        return StderrRelay([this](std::string_view tag, std::string_view line) {
            lines.emplace_back(std::string(tag), std::string(line));
        });
    }
};

TEST(StderrRelay, LinesAcrossChunksTaggedWithTheTagOfTheirEnd) {
    Relayed out;
    auto relay = out.relay();
    relay.feed("one\ntw", "a");
    relay.feed("o\nthree", "b");
    relay.flush("c");
    ASSERT_EQ(out.lines.size(), 3u);
    EXPECT_EQ(out.lines[0], (std::pair<std::string, std::string>{"a", "one"}));
    EXPECT_EQ(out.lines[1], (std::pair<std::string, std::string>{"b", "two"}));
    EXPECT_EQ(out.lines[2], (std::pair<std::string, std::string>{"c", "three"}));
}

TEST(StderrRelay, NoRelayedLineIsLongerThanTheBoundEvenWithItsNewline) {
    Relayed out;
    auto relay = out.relay();
    std::string long_line(3 * longest_relayed_line + 10, 'x');
    relay.feed(long_line + "\nshort\n", "t");  // the whole line in one chunk
    std::string without_newline(longest_relayed_line + 1, 'y');
    relay.feed(without_newline, "t");  // no newline yet: the bound's worth goes at once
    std::size_t total = 0;
    for (const auto& [tag, line] : out.lines) {
        EXPECT_LE(line.size(), longest_relayed_line);
        total += line.size();
    }
    // Three pieces of the bound, the rest of the line, then the next line.
    ASSERT_GE(out.lines.size(), 6u);
    EXPECT_EQ(out.lines[3].second, std::string(10, 'x'));
    EXPECT_EQ(out.lines[4].second, "short");
    EXPECT_EQ(total, long_line.size() + 5 + longest_relayed_line);
    relay.flush("t");
    EXPECT_EQ(out.lines.back().second, "y");
}

TEST(StderrRelay, ALineOfExactlyTheBoundWhoseNewlineComesLaterIsOneLine) {
    Relayed out;
    auto relay = out.relay();
    std::string line(longest_relayed_line, 'z');
    relay.feed(line, "t");
    relay.feed("\nnext\n", "t");
    ASSERT_EQ(out.lines.size(), 2u);
    EXPECT_EQ(out.lines[0].second, line);
    EXPECT_EQ(out.lines[1].second, "next");
}

TEST(StderrRelay, ResetForgetsAPartialLine) {
    Relayed out;
    auto relay = out.relay();
    relay.feed("half", "t");
    relay.reset();
    relay.feed("new\n", "t");
    ASSERT_EQ(out.lines.size(), 1u);
    EXPECT_EQ(out.lines[0].second, "new");
}

TEST(Tail, KeepsTheLastBytes) {
    Tail tail(4);
    EXPECT_TRUE(tail.empty());
    tail.append("ab");
    EXPECT_EQ(tail.text(), "ab");
    tail.append("cdef");
    EXPECT_EQ(tail.text(), "cdef");
    for (char c = 'g'; c <= 'z'; ++c)
        tail.append(std::string(1, c));
    EXPECT_EQ(tail.text(), "wxyz");
    tail.append("0123456789");
    EXPECT_EQ(tail.text(), "6789");
    tail.clear();
    EXPECT_TRUE(tail.empty());
}

TEST(BoundedText, KeepsTheFirstBytesAndCountsTheRest) {
    BoundedText text;
    text.limit = 5;
    text.append("abc");
    text.append("defg");
    text.append("h");
    EXPECT_EQ(text.text, "abcde");
    EXPECT_EQ(text.dropped, 3u);
}

TEST(CutTo, CutsAndSaysHowMuch) {
    std::string text = "abcdef";
    EXPECT_EQ(cut_to(text, 10), 0u);
    EXPECT_EQ(cut_to(text, 4), 2u);
    EXPECT_EQ(text, "abcd");
}

}  // namespace
}  // namespace workq::work
