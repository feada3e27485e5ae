#include "queue/handler_protocol.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "util/text.hpp"

namespace workq::queue {

std::string encode_request(const HandlerRequest& request) {
    boost::json::object object{
        {"id", request.id}, {"queue", request.queue}, {"attempt", request.attempt}};
    if (is_valid_utf8(request.payload))
        object["payload"] = boost::json::string(request.payload);
    else
        object["payload_base64"] = base64_encode(request.payload);
    return boost::json::serialize(object) + "\n";
}

HandlerReply parse_reply(std::string_view line) {
    HandlerReply reply;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    boost::system::error_code ec;
    auto value = boost::json::parse(line, ec);
    if (ec) {
        reply.problem = fmt::format("the reply is not valid JSON ({})", ec.message());
        return reply;
    }
    if (!value.is_object()) {
        reply.problem = "the reply is not a JSON object";
        return reply;
    }
    const auto& object = value.as_object();
    const auto* id = object.if_contains("id");
    if (!id || !id->is_string()) {
        reply.problem = "the reply has no string \"id\"";
        return reply;
    }
    reply.id = std::string(id->as_string());
    const auto* ok = object.if_contains("ok");
    if (!ok || !ok->is_bool()) {
        reply.problem = "the reply has no boolean \"ok\"";
        return reply;
    }
    reply.ok = ok->as_bool();
    auto text = [&](std::string_view name, std::string& out) -> bool {
        const auto* field = object.if_contains(name);
        if (!field || field->is_null()) return true;
        if (!field->is_string()) {
            reply.problem = fmt::format("the reply's \"{}\" is not a string", name);
            return false;
        }
        out = std::string(field->as_string());
        return true;
    };
    if (!text("result", reply.result) || !text("error", reply.error)) return reply;
    if (const auto* encoded = object.if_contains("result_base64");
        encoded && encoded->is_string()) {
        auto decoded = base64_decode(encoded->as_string());
        if (!decoded) {
            reply.problem = "the reply's \"result_base64\" is not base64";
            return reply;
        }
        reply.result = *decoded;
    }
    if (const auto* retry = object.if_contains("retry"); retry && !retry->is_null()) {
        if (!retry->is_bool()) {
            reply.problem = "the reply's \"retry\" is not a boolean";
            return reply;
        }
        reply.retry = retry->as_bool();
    }
    reply.valid = true;
    return reply;
}

}  // namespace workq::queue
