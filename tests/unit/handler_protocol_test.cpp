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
