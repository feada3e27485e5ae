// RESP on our own transport (lib/redis/resp.hpp): commands as RESP arrays with exact lengths,
// replies parsed however the bytes are split into reads.
#include "redis/resp.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "redis/transport.hpp"

using namespace workq;
using namespace workq::redis;

TEST(Resp, CommandsAreArraysOfBulkStringsWithExactLengths) {
    std::string out;
    std::vector<std::string_view> args{"SET", std::string_view("k\0y", 3), "a\r\nb", ""};
    append_command(out, std::span<const std::string_view>(args));
    EXPECT_EQ(out, std::string("*4\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n$4\r\na\r\nb\r\n$0\r\n\r\n", 38));
    std::vector<std::string> more{"PING"};
    append_command(out, std::span<const std::string>(more));
    EXPECT_TRUE(out.ends_with("*1\r\n$4\r\nPING\r\n"));
}

TEST(Resp, RepliesComeWholeHoweverTheBytesAreSplit) {
    std::string stream = "+OK\r\n*3\r\n:1\r\n$5\r\nhe\r\no\r\n$-1\r\n-ERR nope\r\n";
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        ReplyReader reader;
        std::vector<Reply> replies;
        reader.feed(stream.data(), cut);
        while (auto reply = reader.next())
            replies.push_back(std::move(*reply));
        reader.feed(stream.data() + cut, stream.size() - cut);
        while (auto reply = reader.next())
            replies.push_back(std::move(*reply));
        ASSERT_EQ(replies.size(), 3u) << cut;
        EXPECT_EQ(replies[0].type, Reply::Type::status);
        EXPECT_EQ(replies[0].text, "OK");
        ASSERT_EQ(replies[1].elements.size(), 3u);
        EXPECT_EQ(replies[1].elements[0].integer, 1);
        EXPECT_EQ(replies[1].elements[1].text, "he\r\no");
        EXPECT_TRUE(replies[1].elements[2].is_nil());
        EXPECT_TRUE(replies[2].is_error());
        EXPECT_EQ(replies[2].text, "ERR nope");
    }
}

TEST(Resp, BytesThatAreNotRespAreATransportError) {
    ReplyReader reader;
    std::string tls_alert("\x15\x03\x03\x00\x02\x02\x28", 7);
    reader.feed(tls_alert.data(), tls_alert.size());
    EXPECT_THROW(reader.next(), TransportError);
}

// hiredis builds the Reply tree directly (redis/resp.cpp): nested arrays, arrays longer than
// what is reserved up front (their elements move as the array grows), empty and nil arrays,
// and replies cut short, by the end of the reader or by bytes that are not RESP (ASan: nothing
// leaks, nothing is freed twice).
TEST(Resp, NestedAndLongArraysAreBuiltWhole) {
    std::string stream = "*3\r\n*2\r\n:7\r\n*1\r\n$1\r\nx\r\n*0\r\n*-1\r\n";
    stream += "*3000\r\n";
    for (int i = 0; i < 3000; ++i)
        stream += i % 2 ? fmt::format("*2\r\n:{}\r\n+s{}\r\n", i, i) : fmt::format(":{}\r\n", i);
    ReplyReader reader;
    reader.feed(stream.data(), stream.size());
    auto first = reader.next();
    ASSERT_TRUE(first);
    ASSERT_EQ(first->elements.size(), 3u);
    ASSERT_EQ(first->elements[0].elements.size(), 2u);
    EXPECT_EQ(first->elements[0].elements[0].integer, 7);
    EXPECT_EQ(first->elements[0].elements[1].elements.at(0).text, "x");
    EXPECT_TRUE(first->elements[1].is_array());
    EXPECT_TRUE(first->elements[1].elements.empty());
    EXPECT_TRUE(first->elements[2].is_nil());
    auto second = reader.next();
    ASSERT_TRUE(second);
    ASSERT_EQ(second->elements.size(), 3000u);
    for (int i = 0; i < 3000; ++i) {
        const auto& element = second->elements[static_cast<std::size_t>(i)];
        if (i % 2 == 0) {
            EXPECT_EQ(element.integer, i);
        } else {
            ASSERT_EQ(element.elements.size(), 2u) << i;
            EXPECT_EQ(element.elements[0].integer, i);
            EXPECT_EQ(element.elements[1].type, Reply::Type::status);
            EXPECT_EQ(element.elements[1].text, fmt::format("s{}", i));
        }
    }
    EXPECT_FALSE(reader.next());
}

TEST(Resp, RepliesCutShortAreFreed) {
    {
        ReplyReader reader;  // ends holding half a reply
        std::string half = "*2\r\n*2\r\n$3\r\nabc\r\n";
        reader.feed(half.data(), half.size());
        EXPECT_FALSE(reader.next());
    }
    ReplyReader reader;
    std::string broken = "*2\r\n*2\r\n:1\r\n\x15nope\r\n";
    reader.feed(broken.data(), broken.size());
    EXPECT_THROW(reader.next(), TransportError);
}
