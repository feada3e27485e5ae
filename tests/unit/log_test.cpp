#include "util/log.hpp"

#include <gtest/gtest.h>

#include <ctime>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "test_env.hpp"
#include "util/time.hpp"

using namespace workq;
using workq::test::CaptureStderr;
using workq::test::EnvVar;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

long long now_millis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Puts the logger back as the runner sets it, whatever a test did.
class Log : public ::testing::Test {
  protected:
    void TearDown() override { log::configure("workq", log::Level::info, log::Format::human); }
};

}  // namespace

TEST_F(Log, HumanLinesStartWithTheProgramNameAndLevel) {
    log::configure("workq-test", log::Level::info, log::Format::human);
    CaptureStderr capture;
    log::info("job succeeded", {{"job", "01jd9x3k7m2q5v8wza"}, {"queue", "mail"}});
    log::warn("slow");
    log::error("cannot requeue 01x: no such dead letter");
    EXPECT_EQ(capture.text(),
              "workq-test: info: job succeeded job=01jd9x3k7m2q5v8wza queue=mail\n"
              "workq-test: warning: slow\n"
              "workq-test: error: cannot requeue 01x: no such dead letter\n");
}

TEST_F(Log, HumanFieldValuesAreQuotedAndEscapedWhenNeeded) {
    log::configure("workq-test", log::Level::info, log::Format::human);
    CaptureStderr capture;
    log::info(
        "x",
        {{"a", "two words"}, {"b", ""}, {"c", "say \"hi\"\n"}, {"d", "k=v"}, {"e", "bell\x07"}});
    EXPECT_EQ(capture.text(),
              "workq-test: info: x a=\"two words\" b=\"\" c=\"say \\\"hi\\\"\\n\" d=\"k=v\" "
              "e=\"bell\\x07\"\n");
}

TEST_F(Log, EveryLineOfAMultiLineMessageStartsWithTheProgramName) {
    log::configure("workq-test", log::Level::info, log::Format::human);
    CaptureStderr capture;
    log::error("first line\nsecond line\nthird line\n");
    auto lines = lines_of(capture.text());
    ASSERT_EQ(lines.size(), 3u) << capture.text();
    for (const auto& line : lines)
        EXPECT_EQ(line.rfind("workq-test: ", 0), 0u) << line;
    EXPECT_EQ(lines[0], "workq-test: error: first line");
    EXPECT_NE(lines[2].find("third line"), std::string::npos);
}

TEST_F(Log, JsonIsOneValidObjectPerLine) {
    log::configure("workq-test", log::Level::debug, log::Format::json);
    CaptureStderr capture;
    log::info("job succeeded", {{"job", "01jd"}, {"duration", "0.21s"}});
    log::warn("quote \" backslash \\ newline \n tab \t bell \x07 done");
    log::debug("fine detail");
    log::error("bad byte \xff here");
    auto lines = lines_of(capture.text());
    ASSERT_EQ(lines.size(), 4u) << capture.text();
    std::vector<boost::json::object> objects;
    for (const auto& line : lines) {
        boost::system::error_code ec;
        auto value = boost::json::parse(line, ec);
        ASSERT_FALSE(ec) << ec.message() << ": " << line;
        ASSERT_TRUE(value.is_object()) << line;
        objects.push_back(value.as_object());
    }
    EXPECT_EQ(objects[0].at("level").as_string(), "info");
    EXPECT_EQ(objects[0].at("program").as_string(), "workq-test");
    EXPECT_EQ(objects[0].at("msg").as_string(), "job succeeded");
    EXPECT_EQ(objects[0].at("job").as_string(), "01jd");
    EXPECT_EQ(objects[0].at("duration").as_string(), "0.21s");
    EXPECT_EQ(objects[1].at("level").as_string(), "warning");
    EXPECT_EQ(objects[1].at("msg").as_string(),
              "quote \" backslash \\ newline \n tab \t bell \x07 done");
    EXPECT_EQ(objects[2].at("level").as_string(), "debug");
    EXPECT_EQ(objects[3].at("level").as_string(), "error");
    EXPECT_EQ(objects[3].at("msg").as_string(), "bad byte \xef\xbf\xbd here");
}

TEST_F(Log, JsonKeepsValidUtf8AndReplacesInvalidBytes) {
    log::configure("workq-test", log::Level::info, log::Format::json);
    struct Case {
        const char* raw;
        const char* shown;
    };
    const Case cases[] = {
        {"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac", "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac"},
        {"\x80", "\xef\xbf\xbd"},                                  // a stray continuation byte
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                  // an overlong '/'
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},  // a surrogate
        {"\xf4\x90\x80\x80",
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},  // beyond U+10FFFF
        {"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},      // a sequence cut short
    };
    for (const auto& [raw, shown] : cases) {
        CaptureStderr capture;
        log::relay("01jd", raw);
        log::info(raw, {{"field", raw}});
        auto lines = lines_of(capture.text());
        ASSERT_EQ(lines.size(), 2u);
        boost::system::error_code ec;
        auto relayed = boost::json::parse(lines[0], ec);
        ASSERT_FALSE(ec) << lines[0];
        EXPECT_EQ(relayed.as_object().at("line").as_string(), shown);
        auto event = boost::json::parse(lines[1], ec);
        ASSERT_FALSE(ec) << lines[1];
        EXPECT_EQ(event.as_object().at("msg").as_string(), shown);
        EXPECT_EQ(event.as_object().at("field").as_string(), shown);
    }
}

TEST_F(Log, JsonTimestampsAreUtcWhateverTheTimeZone) {
    EnvVar tz("TZ", "Asia/Kolkata");  // +05:30: a local time would be far off
    tzset();
    log::configure("workq-test", log::Level::info, log::Format::json);
    CaptureStderr capture;
    auto before = now_millis();
    log::info("tick");
    auto after = now_millis();
    auto text = capture.text();
    tz.set(std::nullopt);
    tzset();
    auto value = boost::json::parse(text);
    std::string ts(value.as_object().at("ts").as_string());
    auto parsed = parse_time(ts);
    ASSERT_TRUE(parsed.has_value()) << "not RFC 3339: " << ts;
    EXPECT_GE(*parsed, before / 1000 * 1000) << ts;
    EXPECT_LE(*parsed, after) << ts;
    EXPECT_EQ(ts.back(), 'Z');
}

TEST_F(Log, TheLevelFiltersLessSevereLines) {
    log::configure("workq-test", log::Level::warn, log::Format::human);
    CaptureStderr capture;
    log::debug("d");
    log::info("i");
    log::warn("w");
    log::error("e");
    EXPECT_EQ(capture.text(), "workq-test: warning: w\nworkq-test: error: e\n");
    EXPECT_FALSE(log::enabled(log::Level::info));
    EXPECT_TRUE(log::enabled(log::Level::warn));
}

TEST_F(Log, QuietShowsErrorsOnlyOfOurOwnAndStillRelaysHandlers) {
    log::configure("workq-test", log::Level::error, log::Format::human);
    CaptureStderr capture;
    log::info("started the embedded redis-server");
    log::warn("maxmemory-policy is allkeys-lru");
    log::relay("01jd", "handler chatter");
    log::error("cannot reach Redis");
    EXPECT_EQ(capture.text(),
              "workq-test: [01jd] handler chatter\nworkq-test: error: cannot reach Redis\n");
}

TEST_F(Log, RelayOutputOffSilencesHandlers) {
    log::configure("workq-test", log::Level::error, log::Format::human);
    log::relay_output(false);
    CaptureStderr capture;
    log::relay("01jd", "handler chatter");
    log::error("cannot reach Redis");
    EXPECT_EQ(capture.text(), "workq-test: error: cannot reach Redis\n");
}

TEST_F(Log, HumanLinesEscapeControlCharacters) {
    // A handler's stderr, relayed or quoted in an error, must not drive the reader's terminal.
    log::configure("workq-work", log::Level::info, log::Format::human);
    CaptureStderr capture;
    log::relay("01jd", "\x1b]0;title\x07 \x1b[2J\rred\xc2\x9b");
    log::error("job failed: \x1b[31mboom\x07\nsecond \x1b line", {{"error",
                                                                   "\x1b[1m\xc2\x9b"
                                                                   "2J"}});
    EXPECT_EQ(capture.text(),
              "workq-work: [01jd] \\x1b]0;title\\x07 \\x1b[2J\\rred\\u009b\n"
              "workq-work: error: job failed: \\x1b[31mboom\\x07\n"
              "workq-work:   second \\x1b line error=\"\\x1b[1m\\u009b2J\"\n");
}

TEST_F(Log, RelayedLinesAreTaggedWithTheJobAndBypassTheLevel) {
    log::configure("workq-work", log::Level::warn, log::Format::human);
    CaptureStderr capture;
    log::relay("01jd9x3k7m2q5v8wza", "converting page 3");
    EXPECT_EQ(capture.text(), "workq-work: [01jd9x3k7m2q5v8wza] converting page 3\n");

    log::configure("workq-work", log::Level::info, log::Format::json);
    CaptureStderr json_capture;
    log::relay("01jd", "say \"hi\"");
    auto value = boost::json::parse(json_capture.text());
    EXPECT_EQ(value.as_object().at("job").as_string(), "01jd");
    EXPECT_EQ(value.as_object().at("line").as_string(), "say \"hi\"");
    EXPECT_EQ(value.as_object().at("program").as_string(), "workq-work");
}

TEST_F(Log, SetLevelChangesOnlyTheLevel) {
    log::configure("workq-test", log::Level::info, log::Format::human);
    log::set_level(log::Level::debug);
    EXPECT_EQ(log::program(), "workq-test");
    CaptureStderr capture;
    log::debug("now visible");
    EXPECT_EQ(capture.text(), "workq-test: debug: now visible\n");
}

TEST_F(Log, ParsesLevelNames) {
    log::Level level = log::Level::info;
    EXPECT_TRUE(log::parse_level("debug", level));
    EXPECT_EQ(level, log::Level::debug);
    EXPECT_TRUE(log::parse_level("warning", level));
    EXPECT_EQ(level, log::Level::warn);
    EXPECT_TRUE(log::parse_level("warn", level));
    EXPECT_EQ(level, log::Level::warn);
    EXPECT_TRUE(log::parse_level("error", level));
    EXPECT_EQ(level, log::Level::error);
    EXPECT_TRUE(log::parse_level("info", level));
    EXPECT_EQ(level, log::Level::info);
    for (const char* bad : {"", "INFO", "verbose", "err", "3"}) {
        EXPECT_FALSE(log::parse_level(bad, level)) << bad;
        EXPECT_EQ(level, log::Level::info) << "a refused name leaves the level alone";
    }
}
