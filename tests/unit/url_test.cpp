#include "redis/url.hpp"

#include <gtest/gtest.h>

#include <string>

#include "util/errors.hpp"

using namespace workq;
using redis::Endpoint;
using redis::parse_url;

namespace {

// The UsageError message parse_url throws for `url`; fails the test when it does not throw.
std::string refusal(std::string_view url) {
    try {
        auto endpoint = parse_url(url);
        ADD_FAILURE() << "accepted '" << url << "' as " << redis::describe(endpoint);
    } catch (const UsageError& error) {
        return error.what();
    }
    return "";
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST(Url, HostAlone) {
    auto endpoint = parse_url("redis://cache.example.com");
    EXPECT_EQ(endpoint.kind, Endpoint::Kind::tcp);
    EXPECT_EQ(endpoint.host, "cache.example.com");
    EXPECT_EQ(endpoint.port, 6379);
    EXPECT_EQ(endpoint.database, 0);
    EXPECT_EQ(endpoint.username, "");
    EXPECT_EQ(endpoint.password, "");
}

TEST(Url, HostPortAndDatabase) {
    auto endpoint = parse_url("redis://10.0.0.7:6380/3");
    EXPECT_EQ(endpoint.host, "10.0.0.7");
    EXPECT_EQ(endpoint.port, 6380);
    EXPECT_EQ(endpoint.database, 3);

    endpoint = parse_url("redis://localhost/5");
    EXPECT_EQ(endpoint.port, 6379);
    EXPECT_EQ(endpoint.database, 5);

    endpoint = parse_url("redis://localhost:1/");  // a trailing slash: database 0
    EXPECT_EQ(endpoint.port, 1);
    EXPECT_EQ(endpoint.database, 0);

    EXPECT_EQ(parse_url("redis://h:65535").port, 65535);
}

TEST(Url, UserAndPassword) {
    auto endpoint = parse_url("redis://alice:s3cret@db.internal:6390/2");
    EXPECT_EQ(endpoint.username, "alice");
    EXPECT_EQ(endpoint.password, "s3cret");
    EXPECT_EQ(endpoint.host, "db.internal");
    EXPECT_EQ(endpoint.port, 6390);
    EXPECT_EQ(endpoint.database, 2);

    endpoint = parse_url("redis://bob@host");
    EXPECT_EQ(endpoint.username, "bob");
    EXPECT_EQ(endpoint.password, "");
}

TEST(Url, PasswordWithoutUser) {
    auto endpoint = parse_url("redis://:hunter2@host");
    EXPECT_EQ(endpoint.username, "");
    EXPECT_EQ(endpoint.password, "hunter2");
    EXPECT_EQ(endpoint.host, "host");
}

TEST(Url, PercentEscapesInUserAndPassword) {
    auto endpoint = parse_url("redis://us%40er:p%3Ass%2Fw%40rd%25@host");
    EXPECT_EQ(endpoint.username, "us@er");
    EXPECT_EQ(endpoint.password, "p:ss/w@rd%");
    EXPECT_EQ(endpoint.host, "host");
    EXPECT_EQ(parse_url("redis://:%7e%7E@h").password, "~~");  // either case of hex digits
}

TEST(Url, AnUnescapedAtSignBelongsToThePassword) {
    auto endpoint = parse_url("redis://:p@ss@host:7000");
    EXPECT_EQ(endpoint.password, "p@ss");
    EXPECT_EQ(endpoint.host, "host");
    EXPECT_EQ(endpoint.port, 7000);
}

TEST(Url, Ipv6InBrackets) {
    auto endpoint = parse_url("redis://[::1]:6380");
    EXPECT_EQ(endpoint.host, "::1");
    EXPECT_EQ(endpoint.port, 6380);

    endpoint = parse_url("redis://u:p@[fe80::1:2]/4");
    EXPECT_EQ(endpoint.host, "fe80::1:2");
    EXPECT_EQ(endpoint.port, 6379);
    EXPECT_EQ(endpoint.database, 4);
    EXPECT_EQ(endpoint.password, "p");
}

TEST(Url, UnixSocket) {
    auto endpoint = parse_url("unix:///run/redis/redis.sock");
    EXPECT_EQ(endpoint.kind, Endpoint::Kind::unix_socket);
    EXPECT_EQ(endpoint.socket_path, "/run/redis/redis.sock");
    EXPECT_EQ(endpoint.database, 0);

    endpoint = parse_url("unix:///tmp/to.sock?db=7");
    EXPECT_EQ(endpoint.socket_path, "/tmp/to.sock");
    EXPECT_EQ(endpoint.database, 7);

    EXPECT_EQ(parse_url("unix:///tmp/with%20space.sock").socket_path, "/tmp/with space.sock");
}

TEST(Url, RefusesAMissingScheme) {
    for (const char* url : {"localhost", "localhost:6379", "/tmp/redis.sock", ""}) {
        auto message = refusal(url);
        EXPECT_TRUE(contains(message, "invalid Redis URL")) << message;
        EXPECT_TRUE(contains(message, "redis://host")) << message;  // shows the expected form
    }
}

TEST(Url, RefusesUnknownSchemes) {
    for (const char* url : {"http://host", "tcp://host:6379", "REDIS://host", "redis+tls://h"}) {
        auto message = refusal(url);
        EXPECT_TRUE(contains(message, "unknown scheme")) << message;
        EXPECT_TRUE(contains(message, url)) << message;
    }
}

TEST(Url, ParsesTlsUrls) {
    auto endpoint = parse_url("rediss://alice:topsecret@cache.example.com:6380/2");
    EXPECT_TRUE(endpoint.tls.enabled);
    EXPECT_EQ(endpoint.kind, Endpoint::Kind::tcp);
    EXPECT_EQ(endpoint.host, "cache.example.com");
    EXPECT_EQ(endpoint.port, 6380);
    EXPECT_EQ(endpoint.database, 2);
    EXPECT_EQ(endpoint.username, "alice");
    EXPECT_EQ(endpoint.password, "topsecret");
    EXPECT_EQ(parse_url("rediss://[::1]").port, 6379);
    EXPECT_FALSE(parse_url("redis://h").tls.enabled);
    EXPECT_FALSE(parse_url("unix:///tmp/x.sock").tls.enabled);
    EXPECT_EQ(redis::describe(endpoint), "rediss://alice@cache.example.com:6380/2");
    auto message = refusal("rediss://:topsecret@cache.example.com:0");
    EXPECT_TRUE(contains(message, "rediss://")) << message;
    EXPECT_FALSE(contains(message, "topsecret")) << message;
}

TEST(Url, RefusesBadPorts) {
    for (const char* url : {"redis://host:0", "redis://host:65536", "redis://host:abc",
                            "redis://host:", "redis://host:-1", "redis://host:63 79",
                            "redis://host:99999999999999999999", "redis://host:6379:1",
                            "redis://[::1]:70000", "redis://[::1]x"}) {
        auto message = refusal(url);
        EXPECT_TRUE(contains(message, "port") || contains(message, "':' after ']'"))
            << url << ": " << message;
    }
    EXPECT_TRUE(contains(refusal("redis://host:0"), "from 1 to 65535"));
}

TEST(Url, RefusesBadDatabases) {
    for (const char* url :
         {"redis://host/x", "redis://host/-1", "redis://host/1.5", "redis://host/99999999999999",
          "redis://host/0/1", "unix:///tmp/x.sock?db=", "unix:///tmp/x.sock?db=two"}) {
        auto message = refusal(url);
        EXPECT_TRUE(contains(message, "database")) << url << ": " << message;
    }
}

TEST(Url, RefusesAMissingHost) {
    for (const char* url :
         {"redis://", "redis://:6379", "redis:///0", "redis://user:pw@", "redis://[]:6379"}) {
        auto message = refusal(url);
        EXPECT_TRUE(contains(message, "host is missing")) << url << ": " << message;
    }
    EXPECT_TRUE(contains(refusal("redis://[::1"), "unclosed '['"));
}

TEST(Url, RefusesRelativeUnixPaths) {
    for (const char* url : {"unix://tmp/x.sock", "unix://", "unix://?db=1", "unix://./x.sock"}) {
        auto message = refusal(url);
        EXPECT_TRUE(contains(message, "absolute socket path")) << url << ": " << message;
    }
}

TEST(Url, RefusesUnknownQueryParameters) {
    auto message = refusal("unix:///tmp/x.sock?timeout=5");
    EXPECT_TRUE(contains(message, "unknown parameter 'timeout'")) << message;
    message = refusal("unix:///tmp/x.sock?db=1&dbx=2");
    EXPECT_TRUE(contains(message, "unknown parameter 'dbx'")) << message;
}

TEST(Url, RefusesBrokenPercentEscapes) {
    for (const char* url :
         {"redis://:pass%4@host", "redis://:pass%@host", "redis://u%2:p@host", "unix:///tmp/x%2"}) {
        auto message = refusal(url);
        EXPECT_TRUE(contains(message, "truncated %-escape")) << url << ": " << message;
    }
    for (const char* url : {"redis://:pa%zzss@host", "redis://:pa%-1ss@host", "redis://:%+aa@h"}) {
        auto message = refusal(url);
        EXPECT_TRUE(contains(message, "bad %-escape")) << url << ": " << message;
    }
}

TEST(Url, RefusalsNeverShowThePassword) {
    for (const char* url :
         {"redis://:topsecret@host:0", "redis://user:topsecret@host/x", "redis://:top@secret@h:0",
          "redis://:top/secret@host:0", "redis://:topsecret@:6379", "redis://u:topsecret%zz@h",
          "unix:///tmp/x.sock?password=topsecret&db=x", "rediss://u:top/secret@h:0"}) {
        auto message = refusal(url);
        EXPECT_FALSE(contains(message, "secret")) << url << ": " << message;
        EXPECT_TRUE(contains(message, "invalid Redis URL")) << message;
    }
}

TEST(Url, DescribeNeverShowsThePassword) {
    EXPECT_EQ(redis::describe(parse_url("redis://host")), "redis://host:6379/0");
    EXPECT_EQ(redis::describe(parse_url("redis://alice:topsecret@host:6380/2")),
              "redis://alice@host:6380/2");
    EXPECT_EQ(redis::describe(parse_url("redis://:topsecret@host")), "redis://host:6379/0");
    EXPECT_EQ(redis::describe(parse_url("redis://[::1]:6380")), "redis://[::1]:6380/0");
    EXPECT_EQ(redis::describe(parse_url("unix:///tmp/x.sock")), "unix:///tmp/x.sock");
    EXPECT_EQ(redis::describe(parse_url("unix:///tmp/x.sock?db=3&password=topsecret")),
              "unix:///tmp/x.sock?db=3");
}

TEST(Url, DescribeRoundTrips) {
    for (const char* url :
         {"redis://h:1/15", "redis://[fe80::1]:6379/0", "unix:///a/b.sock?db=9", "rediss://h/3"}) {
        auto endpoint = parse_url(url);
        auto again = parse_url(redis::describe(endpoint));
        EXPECT_EQ(again.kind, endpoint.kind) << url;
        EXPECT_EQ(again.tls.enabled, endpoint.tls.enabled) << url;
        EXPECT_EQ(again.host, endpoint.host) << url;
        EXPECT_EQ(again.port, endpoint.port) << url;
        EXPECT_EQ(again.socket_path, endpoint.socket_path) << url;
        EXPECT_EQ(again.database, endpoint.database) << url;
    }
}

TEST(Url, DescribeRoundTripsEscapedFields) {
    // Found by tests/fuzz/url_fuzz: fields that were %-escaped in the URL are escaped again, so
    // the description names the same server (and holds no control byte).
    auto path = parse_url("unix:///tmp/a%3Fb%1b.sock?db=1");
    EXPECT_EQ(path.socket_path, "/tmp/a?b\x1b.sock");
    EXPECT_EQ(redis::describe(path), "unix:///tmp/a%3Fb%1B.sock?db=1");
    EXPECT_EQ(parse_url(redis::describe(path)).socket_path, path.socket_path);
    auto user = parse_url("redis://a%3Ab@h");
    EXPECT_EQ(user.username, "a:b");
    EXPECT_EQ(parse_url(redis::describe(user)).username, "a:b");
    EXPECT_EQ(parse_url(redis::describe(parse_url("redis://[[x]:1"))).host, "[x");
}

TEST(Url, RefusesControlCharacters) {
    for (const char* url : {"redis://h\x1b[31m:1", "unix:///tmp/x\n.sock", "redis://h:1/\x7f"}) {
        try {
            parse_url(url);
            ADD_FAILURE() << "accepted " << url;
        } catch (const UsageError& error) {
            EXPECT_TRUE(contains(error.what(), "control character")) << error.what();
            for (char c : std::string(error.what()))
                EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20) << error.what();
        }
    }
}

TEST(Url, MaskPassword) {
    using redis::mask_password;
    EXPECT_EQ(mask_password("redis://alice:s3cret@host:6380/1"), "redis://alice:***@host:6380/1");
    EXPECT_EQ(mask_password("redis://:s3cret@host"), "redis://:***@host");
    EXPECT_EQ(mask_password("redis://:p@ss@host"), "redis://:***@host");
    EXPECT_EQ(mask_password("redis://:pa/ss@host/2"), "redis://:***@host/2");
    EXPECT_EQ(mask_password("rediss://u:p@h"), "rediss://u:***@h");
    EXPECT_EQ(mask_password("unix:///tmp/x.sock?db=1&password=s3cret"),
              "unix:///tmp/x.sock?db=1&password=***");
    EXPECT_EQ(mask_password("unix:///tmp/x.sock?password=s3cret&db=1"),
              "unix:///tmp/x.sock?password=***&db=1");
    // Every password parameter, not only the first (parse_url keeps the last): found by
    // tests/fuzz/url_fuzz.
    EXPECT_EQ(mask_password("unix:///tmp/x.sock?password=&password=s3cret"),
              "unix:///tmp/x.sock?password=***&password=***");
    EXPECT_TRUE(redis::url_has_password("unix:///tmp/x.sock?password=&password=s3cret"));
    // Nothing to hide: unchanged.
    for (const char* url : {"redis://host:6379/0", "redis://alice@host", "unix:///tmp/a:b@c.sock",
                            "unix:///tmp/x.sock?db=2", "no url at all", ""})
        EXPECT_EQ(mask_password(url), url);
}

TEST(Url, BlankPasswordKeepsTheLength) {
    for (auto [url, blanked] :
         {std::pair<std::string, std::string>{"redis://u:s3cret@h:1/2", "redis://u:******@h:1/2"},
          {"redis://:p@ss@h", "redis://:****@h"},
          {"unix:///s?password=ab&db=1&password=c", "unix:///s?password=**&db=1&password=*"},
          {"redis://h:1", "redis://h:1"}}) {
        redis::blank_password(url.data(), url.size());
        EXPECT_EQ(url, blanked);
    }
}

TEST(Url, UrlHasPassword) {
    EXPECT_TRUE(redis::url_has_password("redis://:pw@host"));
    EXPECT_TRUE(redis::url_has_password("redis://user:pw@host"));
    EXPECT_TRUE(redis::url_has_password("redis://:p/w@host"));
    EXPECT_TRUE(redis::url_has_password("unix:///tmp/x.sock?password=pw"));
    EXPECT_FALSE(redis::url_has_password("redis://user@host"));
    EXPECT_FALSE(redis::url_has_password("redis://host:6379"));
    EXPECT_FALSE(redis::url_has_password("unix:///tmp/x.sock?db=1"));
}

// ---- redis+sentinel:// (CONTRACT.md section 10) ----

TEST(Url, SentinelList) {
    auto endpoint = parse_url("redis+sentinel://alice:pw@s1,s2:26380,[::1]:26381/mymaster/3");
    ASSERT_TRUE(endpoint.sentinel);
    const auto& sentinel = *endpoint.sentinel;
    ASSERT_EQ(sentinel.sentinels.size(), 3u);
    EXPECT_EQ(sentinel.sentinels[0], (redis::HostPort{"s1", 26379}));  // the sentinel's port
    EXPECT_EQ(sentinel.sentinels[1], (redis::HostPort{"s2", 26380}));
    EXPECT_EQ(sentinel.sentinels[2], (redis::HostPort{"::1", 26381}));
    EXPECT_EQ(sentinel.master_name, "mymaster");
    EXPECT_EQ(sentinel.password, "");  // the URL's password is the master's
    EXPECT_EQ(endpoint.username, "alice");
    EXPECT_EQ(endpoint.password, "pw");
    EXPECT_EQ(endpoint.database, 3);
    EXPECT_EQ(endpoint.host, "");  // until the sentinels say
}

TEST(Url, SentinelDefaults) {
    auto endpoint = parse_url("redis+sentinel://127.0.0.1/m");
    ASSERT_TRUE(endpoint.sentinel);
    EXPECT_EQ(endpoint.sentinel->sentinels.size(), 1u);
    EXPECT_EQ(endpoint.sentinel->sentinels[0].port, 26379);
    EXPECT_EQ(endpoint.database, 0);
    EXPECT_EQ(parse_url("redis+sentinel://h/m/").database, 0);
    EXPECT_EQ(parse_url("redis+sentinel://h/my%2Fm").sentinel->master_name, "my/m");
    EXPECT_FALSE(parse_url("redis://h").sentinel);
}

TEST(Url, SentinelRefusals) {
    struct Case {
        const char* url;
        const char* says;
    };
    for (auto [url, says] : {
             Case{"redis+sentinel://h", "master's name is missing"},
             Case{"redis+sentinel://h/", "master's name is missing"},
             Case{"redis+sentinel://h//1", "master's name is missing"},
             Case{"redis+sentinel:///m", "no sentinel is named"},
             Case{"redis+sentinel://a,,b/m", "empty entry"},
             Case{"redis+sentinel://a,/m", "empty entry"},
             Case{"redis+sentinel://a:0/m", "port"},
             Case{"redis+sentinel://a:x/m", "port"},
             Case{"redis+sentinel://[::1/m", "unclosed"},
             Case{"redis+sentinel://a/m/x", "database"},
             Case{"redis+sentinel://a/m/1/2", "expected /MASTER[/db]"},
             Case{"redis+sentinel://a/m%zz", "%-escape"},
         }) {
        auto message = refusal(url);
        EXPECT_TRUE(contains(message, "invalid Redis URL")) << url << ": " << message;
        EXPECT_TRUE(contains(message, says)) << url << ": " << message;
    }
    auto message = refusal("rediss+sentinel://:topsecret@h:0/m");
    EXPECT_TRUE(contains(message, "port")) << message;
    EXPECT_FALSE(contains(message, "topsecret")) << message;
    message = refusal("redis+sentinel://:topsecret@h:0/m");
    EXPECT_FALSE(contains(message, "topsecret")) << message;
}

TEST(Url, ClusterSeeds) {
    auto endpoint = parse_url("redis://:pw@h1:7000,[::1]:7001,h3");
    ASSERT_TRUE(endpoint.cluster);
    EXPECT_EQ(endpoint.cluster->seeds,
              (std::vector<redis::HostPort>{{"h1", 7000}, {"::1", 7001}, {"h3", 6379}}));
    EXPECT_EQ(endpoint.host, "h1");
    EXPECT_EQ(endpoint.port, 7000);
    EXPECT_EQ(endpoint.password, "pw");
    EXPECT_FALSE(endpoint.sentinel);
    EXPECT_EQ(redis::describe(endpoint), "redis://h1:7000,[::1]:7001,h3:6379/0");
    auto again = parse_url(redis::describe(endpoint));
    ASSERT_TRUE(again.cluster);
    EXPECT_EQ(again.cluster->seeds, endpoint.cluster->seeds);
    EXPECT_TRUE(parse_url("rediss://a:1,b:2/0").tls.enabled);
    EXPECT_TRUE(parse_url("rediss://a:1,b:2/0").cluster);
    EXPECT_FALSE(parse_url("redis://a:1").cluster);  // one host: found out on connecting
}

TEST(Url, ClusterRefusals) {
    struct Case {
        const char* url;
        const char* says;
    };
    for (auto [url, says] : {
             Case{"redis://a,,b", "empty entry in the list of cluster nodes"},
             Case{"redis://a:1,", "empty entry"},
             Case{"redis://,a:1", "empty entry"},
             Case{"redis://a:1,b:0", "port"},
             Case{"redis://a:1,b:x", "port"},
             Case{"redis://a:1,[::1", "unclosed"},
             Case{"redis://a:1,b:2/3", "only database 0"},
             Case{"redis://a:1,b:2/x", "database"},
         }) {
        auto message = refusal(url);
        EXPECT_TRUE(contains(message, "invalid Redis URL")) << url << ": " << message;
        EXPECT_TRUE(contains(message, says)) << url << ": " << message;
    }
    auto message = refusal("redis://:topsecret@a:1,b:2/3");
    EXPECT_FALSE(contains(message, "topsecret")) << message;
}

TEST(Url, SentinelOverTlsIsTlsToTheSentinelsAndTheMaster) {
    auto endpoint = parse_url("rediss+sentinel://:pw@s1,s2:7/mymaster/1");
    EXPECT_TRUE(endpoint.tls.enabled);
    ASSERT_TRUE(endpoint.sentinel);
    EXPECT_EQ(endpoint.sentinel->master_name, "mymaster");
    EXPECT_EQ(endpoint.database, 1);
    EXPECT_EQ(redis::describe(endpoint), "rediss+sentinel://s1:26379,s2:7/mymaster/1");
    EXPECT_FALSE(parse_url("redis+sentinel://s1/m").tls.enabled);
    endpoint.host = "10.0.0.5";
    endpoint.port = 6380;
    EXPECT_EQ(redis::describe(endpoint), "master mymaster at rediss://10.0.0.5:6380/1");
}

TEST(Url, SentinelDescribe) {
    auto endpoint = parse_url("redis+sentinel://bob:topsecret@s1,[::1]:7/my%2Fm/2");
    EXPECT_EQ(redis::describe(endpoint), "redis+sentinel://bob@s1:26379,[::1]:7/my%2Fm/2");
    auto again = parse_url(redis::describe(endpoint));
    ASSERT_TRUE(again.sentinel);
    EXPECT_EQ(again.sentinel->sentinels, endpoint.sentinel->sentinels);
    EXPECT_EQ(again.sentinel->master_name, "my/m");
    EXPECT_EQ(again.database, 2);
    // Once the sentinels named the master, messages name it.
    endpoint.host = "10.0.0.5";
    endpoint.port = 6380;
    EXPECT_EQ(redis::describe(endpoint), "master my%2Fm at redis://bob@10.0.0.5:6380/2");
    EXPECT_TRUE(redis::url_has_password("redis+sentinel://:x@h/m"));
    EXPECT_EQ(redis::mask_password("redis+sentinel://u:x@h/m"), "redis+sentinel://u:***@h/m");
}
