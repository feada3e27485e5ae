// Between bytes and the router: Beast's request parser with our limits, and our responses as
// Beast messages. The server (http/server.cpp) and the fuzz target
// (tests/fuzz/http_request_fuzz.cpp) read requests through these same functions, so that what is
// fuzzed is what the server runs.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/router.hpp"

namespace workq::http {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
using ResponseMessage = boost::beast::http::response<boost::beast::http::string_body>;

// Caps `parser` (a fresh one, before its first byte) at the limits' header and body sizes.
void apply_limits(RequestParser& parser, const Limits& limits);

// The message for a request read whole: the router's response in the request's HTTP version,
// keeping the connection open when the request allows it. HEAD gets the headers GET would
// (Content-Length included) and no body.
ResponseMessage answer(const Router& router, const RequestParser::value_type& request);

// Whether `error`, from reading a request, means the client sent something that is not an
// acceptable request (it gets an answer_unreadable response, then the connection closes), as
// opposed to the connection ending or timing out (nothing to answer).
bool is_bad_request(boost::beast::error_code error);

// The response to a request that could not be read: 431 when the header is over the limit, 413
// when the body is, 400 for anything malformed. Always "Connection: close": after bad bytes
// there is no telling where the next request would start.
ResponseMessage answer_unreadable(boost::beast::error_code error);

}  // namespace workq::http
