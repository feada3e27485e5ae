// The fault proxy's RESP framer (tests/fault/proxy): a lost reply must be exactly one whole
// reply, however the server's bytes are split into reads.
#include "resp_framer.hpp"

#include <gtest/gtest.h>

using namespace workq::fault;

namespace {

// Every proper prefix of a value is incomplete; the whole is complete with its length.
void expect_whole_only(const std::string& value) {
    for (std::size_t cut = 0; cut < value.size(); ++cut)
        EXPECT_EQ(scan_value(value.substr(0, cut)).status, Scan::incomplete) << cut;
    auto whole = scan_value(value + "+NEXT\r\n");
    EXPECT_EQ(whole.status, Scan::complete);
    EXPECT_EQ(whole.length, value.size());
}

}  // namespace

TEST(RespFramer, EveryReplyTypeEndsWhereItShould) {
    expect_whole_only("+OK\r\n");
    expect_whole_only("-NOSCRIPT No matching script\r\n");
    expect_whole_only(":42\r\n");
    expect_whole_only("$5\r\nhe\r\no\r\n");  // a bulk string holding CRLF
    expect_whole_only("$-1\r\n");
    expect_whole_only("*-1\r\n");
    expect_whole_only("*0\r\n");
    expect_whole_only("*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+x\r\n");  // nested, as claim replies
    expect_whole_only("%1\r\n+k\r\n:1\r\n");                          // RESP3 map
    expect_whole_only("|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n");  // an attribute, then its value
}

TEST(RespFramer, MalformedStreamsAreSaidToBe) {
    EXPECT_EQ(scan_value("?what\r\n").status, Scan::malformed);
    EXPECT_EQ(scan_value("$abc\r\n").status, Scan::malformed);
    EXPECT_EQ(scan_value("$2\r\nabcd\r\n").status, Scan::malformed);
}

TEST(RespFramer, CommandsYieldTheirWords) {
    std::string command = "*3\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n0\r\n";
    for (std::size_t cut = 0; cut < command.size(); ++cut)
        EXPECT_EQ(scan_command(command.substr(0, cut)).status, Scan::incomplete) << cut;
    auto scanned = scan_command(command + "*1\r\n$4\r\nPING\r\n");
    EXPECT_EQ(scanned.status, Scan::complete);
    EXPECT_EQ(scanned.length, command.size());
    EXPECT_EQ(scanned.words, "EVALSHA abc 0");
    auto inline_command = scan_command("PING hello\r\n");
    EXPECT_EQ(inline_command.status, Scan::complete);
    EXPECT_EQ(inline_command.words, "PING hello");
    EXPECT_EQ(scan_command("*1\r\n$-1\r\n").status, Scan::malformed);
    EXPECT_EQ(scan_command("*1\r\n:1\r\n").status, Scan::malformed);
}
