#include "queue/handler_protocol.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "util/text.hpp"

using namespace workq::queue;

TEST(HandlerProtocol, RequestIsOneJsonLineWithThePayloadAsAString) {
    auto line = encode_request({"job-1", "mail", "héllo \"x\"\n", 2});
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "the payload's newline must be escaped";
    auto object = boost::json::parse(line).as_object();
    EXPECT_EQ(object.at("id").as_string(), "job-1");
    EXPECT_EQ(object.at("queue").as_string(), "mail");
    EXPECT_EQ(object.at("attempt").as_int64(), 2);
    EXPECT_EQ(object.at("payload").as_string(), "héllo \"x\"\n");
    EXPECT_FALSE(object.contains("payload_base64"));
}

TEST(HandlerProtocol, BinaryPayloadTravelsAsBase64) {
    std::string payload("\xff\x00\x01 bin", 7);
    auto object = boost::json::parse(encode_request({"j", "q", payload, 1})).as_object();
    EXPECT_FALSE(object.contains("payload"));
    auto decoded = workq::base64_decode(object.at("payload_base64").as_string());
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, payload);
}

TEST(HandlerProtocol, ParsesSuccessAndFailureReplies) {
    auto ok = parse_reply(R"({"id":"j","ok":true,"result":"done"})");
    ASSERT_TRUE(ok.valid) << ok.problem;
    EXPECT_TRUE(ok.ok);
    EXPECT_EQ(ok.result, "done");
    auto failed = parse_reply(R"({"id":"j","ok":false,"error":"boom","retry":false})");
    ASSERT_TRUE(failed.valid);
    EXPECT_FALSE(failed.ok);
    EXPECT_EQ(failed.error, "boom");
    EXPECT_FALSE(failed.retry);
    auto default_retry = parse_reply(R"({"id":"j","ok":false})");
    ASSERT_TRUE(default_retry.valid);
    EXPECT_TRUE(default_retry.retry) << "retry defaults to true";
    auto crlf = parse_reply("{\"id\":\"j\",\"ok\":true}\r");
    EXPECT_TRUE(crlf.valid) << "a CRLF line ending is tolerated";
}

TEST(HandlerProtocol, RefusesMalformedRepliesSayingWhy) {
    struct Case {
        const char* line;
        const char* says;
    };
    for (auto [line, says] :
         {Case{"garbage", "not valid JSON"}, Case{"[1,2]", "not a JSON object"},
          Case{R"({"ok":true})", "\"id\""}, Case{R"({"id":5,"ok":true})", "\"id\""},
          Case{R"({"id":"j"})", "\"ok\""}, Case{R"({"id":"j","ok":"yes"})", "\"ok\""},
          Case{R"({"id":"j","ok":true,"result":7})", "\"result\""},
          Case{R"({"id":"j","ok":false,"retry":"no"})", "\"retry\""}, Case{"", "not valid JSON"}}) {
        auto reply = parse_reply(line);
        EXPECT_FALSE(reply.valid) << line;
        EXPECT_NE(reply.problem.find(says), std::string::npos) << line << " -> " << reply.problem;
    }
}

TEST(HandlerProtocol, ResultMayComeAsBase64) {
    auto reply = parse_reply(R"({"id":"j","ok":true,"result_base64":"/wBi"})");
    ASSERT_TRUE(reply.valid);
    EXPECT_EQ(reply.result, std::string("\xff\x00"
                                        "b",
                                        3));
}

TEST(HandlerProtocol, RequestWrittenWithoutADocumentReadsBackExactly) {
    // Every control character, quotes and backslashes, and UTF-8 beyond ASCII.
    std::string payload;
    for (int c = 1; c < 0x20; ++c)
        payload.push_back(static_cast<char>(c));
    payload += "\"\\/ é € \x7f end";
    std::string line = "kept before ";
    encode_request({"id-1", "q", payload, 3}, line);  // appends
    ASSERT_EQ(line.rfind("kept before ", 0), 0u);
    auto object = boost::json::parse(line.substr(12)).as_object();
    EXPECT_EQ(object.at("payload").as_string(), payload);
    EXPECT_EQ(object.at("attempt").as_int64(), 3);
    EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(HandlerProtocol, ReplyScannedWithoutADocument) {
    // Only the top level counts: an "ok" or "id" inside another value is not the reply's.
    auto nested =
        parse_reply(R"({"meta":{"id":"x","ok":false},"list":[1,{"ok":1}],"id":"j","ok":true})");
    ASSERT_TRUE(nested.valid) << nested.problem;
    EXPECT_EQ(nested.id, "j");
    EXPECT_TRUE(nested.ok);
    auto inner_only = parse_reply(R"({"meta":{"id":"x","ok":true}})");
    EXPECT_FALSE(inner_only.valid);
    // A key given twice: the last value counts (as boost::json's document does).
    auto twice = parse_reply(R"({"id":"a","ok":false,"ok":true,"result":1,"result":"r"})");
    ASSERT_TRUE(twice.valid) << twice.problem;
    EXPECT_TRUE(twice.ok);
    EXPECT_EQ(twice.result, "r");
    // Escapes in keys and values are decoded.
    auto escaped = parse_reply(R"({"\u0069d":"j\n\u00e9","ok":true,"result":"a\"b"})");
    ASSERT_TRUE(escaped.valid) << escaped.problem;
    EXPECT_EQ(escaped.id, "j\né");
    EXPECT_EQ(escaped.result, "a\"b");
    // Trailing bytes after the object are not a reply.
    auto trailing = parse_reply(R"({"id":"j","ok":true} x)");
    EXPECT_FALSE(trailing.valid);
    EXPECT_NE(trailing.problem.find("not valid JSON"), std::string::npos);
    auto null_result = parse_reply(R"({"id":"j","ok":true,"result":null,"retry":null})");
    ASSERT_TRUE(null_result.valid);
    EXPECT_EQ(null_result.result, "");
    EXPECT_TRUE(null_result.retry);
}
