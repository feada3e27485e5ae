#include "http/router.hpp"

#include <fmt/format.h>
#include <exception>

#include "util/log.hpp"
#include "util/names.hpp"

namespace workq::http {

Response text_response(unsigned status, std::string body) {
    Response response;
    response.status = status;
    if (!body.ends_with('\n')) body += '\n';
    response.body = std::move(body);
    return response;
}

void Router::handle(std::string path, Handler handler) {
    handlers_.insert_or_assign(std::move(path), std::move(handler));
}

Response Router::respond(std::string_view method, std::string_view target) const {
    // Origin form only: the absolute form is for proxies, "*" for OPTIONS of the whole server.
    if (!target.starts_with('/'))
        return text_response(400, "bad request: the target is not a path");
    Request request;
    auto question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string_view::npos) request.query = target.substr(question + 1);
    auto found = handlers_.find(request.path);
    if (found == handlers_.end()) return text_response(404, "not found");
    if (method != "GET" && method != "HEAD") {
        auto response = text_response(405, "method not allowed: use GET or HEAD");
        response.allow = "GET, HEAD";
        return response;
    }
    try {
        return found->second(request);
    } catch (const std::exception& error) {
        log::error(
            fmt::format("the handler of {} failed: {}", printable(request.path), error.what()));
    } catch (...) {
        log::error(fmt::format("the handler of {} failed", printable(request.path)));
    }
    return text_response(500, "internal error (the log says which)");
}

}  // namespace workq::http
