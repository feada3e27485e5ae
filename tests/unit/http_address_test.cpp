#include "http/address.hpp"

#include <gtest/gtest.h>

#include "util/errors.hpp"

using namespace workq;

TEST(HttpAddress, PortAloneIsLoopback) {
    auto address = http::parse_listen_address("9187", "--serve");
    EXPECT_EQ(address.host, "127.0.0.1");
    EXPECT_EQ(address.port, 9187);
    EXPECT_EQ(http::parse_listen_address("0", "--serve").port, 0);
}

TEST(HttpAddress, HostsAreIpLiteralsOrLocalhost) {
    auto any = http::parse_listen_address("0.0.0.0:9187", "--serve");
    EXPECT_EQ(any.host, "0.0.0.0");
    EXPECT_EQ(any.port, 9187);
    auto v6 = http::parse_listen_address("[::1]:80", "--serve");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(http::describe(v6), "[::1]:80");
    EXPECT_EQ(http::parse_listen_address("[::]:65535", "--serve").port, 65535);
    EXPECT_EQ(http::parse_listen_address("localhost:8080", "--serve").host, "127.0.0.1");
    EXPECT_EQ(http::describe(http::parse_listen_address("10.1.2.3:1", "--serve")), "10.1.2.3:1");
}

TEST(HttpAddress, DescribeParsesBack) {
    for (const char* text : {"127.0.0.1:9187", "[::1]:80", "0.0.0.0:0", "[fe80::1]:9"}) {
        auto address = http::parse_listen_address(text, "--serve");
        EXPECT_EQ(http::describe(address), text);
        auto again = http::parse_listen_address(http::describe(address), "--serve");
        EXPECT_EQ(again.host, address.host);
        EXPECT_EQ(again.port, address.port);
    }
}

TEST(HttpAddress, RefusesWhatIsNotAnAddressNamingTheFlag) {
    for (const char* bad :
         {"", "nope", "65536", "-1", "+80", "80 ", ":80", "1.2.3.4:", "1.2.3:80", "example.com:80",
          "::1:80", "[::1]80", "[::1", "[]:80", "[::1]:", "1.2.3.4:80:90", "999.1.1.1:80"}) {
        try {
            http::parse_listen_address(bad, "--http");
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const UsageError& error) {
            EXPECT_TRUE(std::string_view(error.what()).starts_with("--http: ")) << error.what();
        }
    }
}
