// HTTP requests (lib/http/message, lib/http/router): the bytes a client sends go through the
// parser with our limits and the router, as in the server (http/server.cpp), one request after
// another as on a kept-alive connection. The first byte sets how many bytes arrive at a time (as
// a socket would deliver them); the rest is the stream. Properties: nothing throws or crashes;
// a request that cannot be read is answered 400, 413 or 431 and ends the connection; a request
// read whole gets 200 only for a registered path with GET or HEAD, 404 for any other path, 405
// (with Allow) for another method, 400 for a target that is not a path, 500 when the handler
// throws; HEAD gets GET's Content-Length and no body; every answer serializes to a response
// that parses back with the same status.
#include <boost/beast/http/write.hpp>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "http/message.hpp"
#include "util/log.hpp"

namespace {
namespace beast_http = boost::beast::http;

const std::string metrics_body = "# TYPE x gauge\nx 1\n";

workq::http::Router make_router() {
    workq::http::Router router;
    router.handle("/livez", [](const workq::http::Request&) {
        return workq::http::text_response(200, "ok");
    });
    router.handle("/metrics", [](const workq::http::Request& request) {
        FUZZ_CHECK(request.path == "/metrics");
        FUZZ_CHECK(request.query.size() < 64 * 1024);
        workq::http::Response response;
        response.body = metrics_body;
        return response;
    });
    router.handle("/throws", [](const workq::http::Request&) -> workq::http::Response {
        throw std::runtime_error("handler failure");
    });
    return router;
}

// The status line of `message`, serialized as the server sends it, parsed back.
unsigned round_trip(workq::http::ResponseMessage& message, bool head) {
    std::ostringstream out;
    out << message;
    std::string wire = out.str();
    beast_http::response_parser<beast_http::string_body> parser;
    parser.skip(head);  // a client that sent HEAD expects no body
    parser.eager(true);
    boost::beast::error_code error;
    parser.put(boost::asio::buffer(wire), error);
    if (error == beast_http::error::need_more) parser.put_eof(error);
    FUZZ_CHECK(!error);
    FUZZ_CHECK(parser.is_done());
    return parser.get().result_int();
}

void check_answer(const workq::http::RequestParser::value_type& request,
                  workq::http::ResponseMessage& message) {
    unsigned status = message.result_int();
    std::string_view target = request.target();
    auto path = target.substr(0, target.find('?'));
    bool known = path == "/livez" || path == "/metrics" || path == "/throws";
    // The router reads the method as sent: "GET" and "HEAD" exactly.
    bool get_or_head = request.method_string() == "GET" || request.method_string() == "HEAD";
    if (!target.starts_with('/'))
        FUZZ_CHECK(status == 400);
    else if (!known)
        FUZZ_CHECK(status == 404);
    else if (!get_or_head)
        FUZZ_CHECK(status == 405 && message[beast_http::field::allow] == "GET, HEAD");
    else if (path == "/throws")
        FUZZ_CHECK(status == 500);
    else
        FUZZ_CHECK(status == 200);
    bool head = request.method_string() == "HEAD";
    if (head) FUZZ_CHECK(message.body().empty());
    if (status == 200 && path == "/metrics")
        FUZZ_CHECK(message[beast_http::field::content_length] ==
                   std::to_string(metrics_body.size()));
    FUZZ_CHECK(round_trip(message, head) == status);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const workq::http::Router router = [] {
        // Handler failures are logged: keep the fuzzer's output quiet.
        workq::log::configure("http_request_fuzz", workq::log::Level::error,
                              workq::log::Format::human);
        workq::log::set_level(workq::log::Level::error);
        return make_router();
    }();
    if (size == 0) return 0;
    std::size_t chunk = 1 + data[0] % 64;
    std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
    workq::http::Limits limits;
    std::string pending;  // arrived, not yet consumed by the parser
    // One request after another, while the connection would stay open.
    for (;;) {
        workq::http::RequestParser parser;
        workq::http::apply_limits(parser, limits);
        parser.eager(true);  // as beast::http::read does
        boost::beast::error_code error;
        while (!parser.is_done()) {
            auto more = stream.substr(0, chunk);
            stream.remove_prefix(more.size());
            pending += more;
            // As beast::http::read: the parser is given bytes, never an empty buffer (whose
            // null data pointer Beast's field parser would offset).
            if (pending.empty()) return 0;
            error = {};
            auto used = parser.put(boost::asio::buffer(pending), error);
            pending.erase(0, used);
            // What the parser holds back waits for more bytes: never more than the caps allow.
            FUZZ_CHECK(pending.size() <= limits.max_header_bytes + limits.max_body_bytes + 64);
            if (error == beast_http::error::need_more) error = {};
            if (error) break;
            // No progress and nothing more to come: the client went quiet or closed in the
            // middle of a request (the server's read ends with a timeout or partial_message).
            if (used == 0 && more.empty()) return 0;
        }
        if (error) {
            FUZZ_CHECK(workq::http::is_bad_request(error));
            auto message = workq::http::answer_unreadable(error);
            auto status = message.result_int();
            FUZZ_CHECK(status == 400 || status == 413 || status == 431);
            FUZZ_CHECK(!message.keep_alive());
            FUZZ_CHECK(round_trip(message, false) == status);
            return 0;
        }
        auto message = workq::http::answer(router, parser.get());
        check_answer(parser.get(), message);
        if (!message.keep_alive()) return 0;
    }
}
