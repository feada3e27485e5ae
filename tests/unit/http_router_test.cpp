#include "http/router.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

using namespace workq;

namespace {

http::Router livez_router(std::string* seen_query = nullptr) {
    http::Router router;
    router.handle("/livez", [seen_query](const http::Request& request) {
        if (seen_query) *seen_query = std::string(request.query);
        return http::text_response(200, "ok");
    });
    return router;
}

}  // namespace

TEST(HttpRouter, RegisteredPathWithGetOrHeadGetsTheHandlersResponse) {
    auto router = livez_router();
    for (const char* method : {"GET", "HEAD"}) {
        auto response = router.respond(method, "/livez");
        EXPECT_EQ(response.status, 200u) << method;
        EXPECT_EQ(response.body, "ok\n");
        EXPECT_EQ(response.content_type, "text/plain; charset=utf-8");
    }
}

TEST(HttpRouter, TheQueryIsNotPartOfThePath) {
    std::string query;
    auto router = livez_router(&query);
    EXPECT_EQ(router.respond("GET", "/livez?verbose=1&x").status, 200u);
    EXPECT_EQ(query, "verbose=1&x");
    EXPECT_EQ(router.respond("GET", "/livez?").status, 200u);
    EXPECT_EQ(query, "");
}

TEST(HttpRouter, AnyOtherPathIs404WhateverTheMethod) {
    auto router = livez_router();
    for (const char* target : {"/", "/livez/", "/LIVEZ", "//livez", "/%6civez", "/livezz"})
        EXPECT_EQ(router.respond("GET", target).status, 404u) << target;
    EXPECT_EQ(router.respond("POST", "/nope").status, 404u);
}

TEST(HttpRouter, AnotherMethodOnAKnownPathIs405WithAllow) {
    auto router = livez_router();
    for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "get", "CONNECT"}) {
        auto response = router.respond(method, "/livez");
        EXPECT_EQ(response.status, 405u) << method;
        EXPECT_EQ(response.allow, "GET, HEAD");
    }
}

TEST(HttpRouter, ATargetThatIsNotAPathIs400) {
    auto router = livez_router();
    for (const char* target : {"*", "livez", "http://localhost/livez", ""})
        EXPECT_EQ(router.respond("GET", target).status, 400u) << target;
}

TEST(HttpRouter, AHandlerThatThrowsGives500AndTheRouterGoesOn) {
    auto router = livez_router();
    router.handle("/boom", [](const http::Request&) -> http::Response {
        throw std::runtime_error("broken");
    });
    EXPECT_EQ(router.respond("GET", "/boom").status, 500u);
    EXPECT_EQ(router.respond("GET", "/livez").status, 200u);
}

TEST(HttpRouter, ALaterHandlerReplacesTheEarlier) {
    auto router = livez_router();
    router.handle("/livez", [](const http::Request&) { return http::text_response(503, "no"); });
    EXPECT_EQ(router.respond("GET", "/livez").status, 503u);
}
