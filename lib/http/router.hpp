// What an HTTP endpoint of ours answers, apart from the sockets: handlers registered per path,
// and the rules for everything else (CONTRACT.md section 12: 404 for an unknown path, 405 for a
// method other than GET or HEAD, 400 for a request that is not one). Pure, so that the unit tests
// and the fuzz target (tests/fuzz/http_request_fuzz.cpp) reach all of it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace workq::http {

// What a handler sees of a request: only GET and HEAD reach it, HEAD answered as GET without the
// body.
struct Request {
    std::string_view path;   // the target up to '?', as sent (not percent-decoded)
    std::string_view query;  // after '?'; empty when there is none
};

struct Response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::string allow;  // the Allow header of a 405; empty otherwise
};

// A plain-text response: `body` is the whole text, a newline added when it has none.
Response text_response(unsigned status, std::string body);

// Handlers run on the server's event loop, one at a time, and must not block for long: every
// other connection waits meanwhile. What a handler throws becomes a 500 (and an error line in
// the log); the server goes on.
using Handler = std::function<Response(const Request&)>;

// The bounds on what one client can make the server hold or wait for. The defaults suit probes
// and scrapers, which send a few hundred bytes and no body.
struct Limits {
    // The request line and headers together; larger gets 431. Prometheus sends ~300 bytes.
    std::size_t max_header_bytes = 8 * 1024;
    // We read no bodies; a small one is read and dropped (the connection stays usable), a larger
    // one gets 413.
    std::size_t max_body_bytes = 1024;
    // From the moment the server waits for a request to its last byte: a client sending one byte
    // a second, or none, is cut off here. Also how long a kept-alive connection may idle.
    std::chrono::milliseconds request_timeout{10'000};
    // How long a client may take to read its response.
    std::chrono::milliseconds write_timeout{10'000};
    // Connections open at once; more wait in the kernel's listen queue until one ends (each ends
    // within the timeouts above), so that a flood costs a bounded amount of memory and fds.
    std::size_t max_connections = 16;
};

class Router {
  public:
    // Serves GET and HEAD of `path` (exact, without the query) with `handler`; a later handler
    // for the same path replaces the earlier one.
    void handle(std::string path, Handler handler);

    // The response to a complete request: the handler's for a registered path and GET or HEAD;
    // 404 for another path (whatever the method); 405 with "Allow: GET, HEAD" for another method
    // on a registered path; 400 for a target that is not a path ("*", "http://host/..."); 500
    // when the handler throws. The body is kept for HEAD too: the caller sends its length only.
    Response respond(std::string_view method, std::string_view target) const;

  private:
    std::map<std::string, Handler, std::less<>> handlers_;
};

}  // namespace workq::http
