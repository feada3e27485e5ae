// The persistent handlers' protocol (lib/queue/handler_protocol). Replies: parse_reply never
// throws, a refused reply says why, an accepted one has its id and outcome and reads the same
// when written back canonically. Requests: whatever the id, queue and payload bytes, the
// request is one line of JSON that carries them exactly (payload_base64 when not UTF-8).
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "queue/handler_protocol.hpp"
#include "util/text.hpp"

namespace {

void check_reply(std::string_view line) {
    auto reply = workq::queue::parse_reply(line);
    if (!reply.valid) {
        FUZZ_CHECK(!reply.problem.empty());
        return;
    }
    FUZZ_CHECK(reply.problem.empty());
    // Written back the way a well-behaved handler would, it reads the same.
    boost::json::object canonical{
        {"id", reply.id}, {"ok", reply.ok}, {"error", reply.error}, {"retry", reply.retry}};
    if (workq::is_valid_utf8(reply.result))
        canonical["result"] = reply.result;
    else
        canonical["result_base64"] = workq::base64_encode(reply.result);
    auto again = workq::queue::parse_reply(boost::json::serialize(canonical));
    FUZZ_CHECK(again.valid);
    FUZZ_CHECK(again.id == reply.id && again.ok == reply.ok && again.result == reply.result &&
               again.error == reply.error && again.retry == reply.retry);
}

void check_request(std::string_view bytes) {
    // Split the input into id, queue and payload at the first two NUL bytes.
    auto first = bytes.find('\0');
    auto second = first == std::string_view::npos ? first : bytes.find('\0', first + 1);
    workq::queue::HandlerRequest request;
    request.id = bytes.substr(0, first);
    if (first != std::string_view::npos)
        request.queue = bytes.substr(first + 1, second - first - 1);
    if (second != std::string_view::npos) request.payload = bytes.substr(second + 1);
    request.attempt = static_cast<long long>(bytes.size());
    if (!workq::is_valid_utf8(request.id) || !workq::is_valid_utf8(request.queue)) return;

    auto line = workq::queue::encode_request(request);
    FUZZ_CHECK(!line.empty() && line.back() == '\n');
    FUZZ_CHECK(line.find('\n') == line.size() - 1);  // one line, whatever the payload holds
    boost::system::error_code ec;
    auto value = boost::json::parse(line, ec);
    FUZZ_CHECK(!ec && value.is_object());
    const auto& object = value.as_object();
    FUZZ_CHECK(object.at("id").as_string() == request.id);
    FUZZ_CHECK(object.at("queue").as_string() == request.queue);
    FUZZ_CHECK(object.at("attempt").as_int64() == request.attempt);
    if (const auto* text = object.if_contains("payload")) {
        FUZZ_CHECK(workq::is_valid_utf8(request.payload));
        FUZZ_CHECK(text->as_string() == request.payload);
    } else {
        auto decoded = workq::base64_decode(object.at("payload_base64").as_string());
        FUZZ_CHECK(decoded && *decoded == request.payload);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    check_reply(bytes);
    check_request(bytes);
    return 0;
}
