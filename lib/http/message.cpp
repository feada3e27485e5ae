#include "http/message.hpp"

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

namespace workq::http {
namespace beast_http = boost::beast::http;

namespace {

ResponseMessage to_message(Response response, unsigned version, bool keep_alive, bool head) {
    ResponseMessage message{static_cast<beast_http::status>(response.status), version};
    message.set(beast_http::field::content_type, response.content_type);
    // Figures computed per request: no cache between a scraper and us may keep them.
    message.set(beast_http::field::cache_control, "no-store");
    if (!response.allow.empty()) message.set(beast_http::field::allow, response.allow);
    message.keep_alive(keep_alive);
    message.content_length(response.body.size());
    if (!head) message.body() = std::move(response.body);
    return message;
}

}  // namespace

void apply_limits(RequestParser& parser, const Limits& limits) {
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
}

ResponseMessage answer(const Router& router, const RequestParser::value_type& request) {
    auto response = router.respond(request.method_string(), request.target());
    bool head = request.method() == beast_http::verb::head;
    // We speak HTTP/1.1, and HTTP/1.0 to a client that asked in it ("HTTP/3.7" parses too).
    unsigned version = request.version() == 10 ? 10 : 11;
    return to_message(std::move(response), version, request.keep_alive(), head);
}

bool is_bad_request(boost::beast::error_code error) {
    // The connection ended (cleanly between requests, or in the middle of one): nobody to answer.
    if (error == beast_http::error::end_of_stream || error == beast_http::error::partial_message)
        return false;
    // Every other error of Beast's HTTP category is about the bytes: a bad method, target,
    // version, header or chunk, or a size over a limit.
    return error.category() ==
           beast_http::make_error_code(beast_http::error::bad_method).category();
}

ResponseMessage answer_unreadable(boost::beast::error_code error) {
    Response response;
    if (error == beast_http::error::header_limit)
        response = text_response(431, "request header fields too large");
    else if (error == beast_http::error::body_limit)
        response = text_response(413, "content too large: requests take no body");
    else
        response = text_response(400, "bad request: " + error.message());
    return to_message(std::move(response), 11, false, false);
}

}  // namespace workq::http
