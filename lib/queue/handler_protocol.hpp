// The persistent handlers' line protocol (CONTRACT.md §4, workq-work --persistent): one JSON
// object per line each way.
//   request: {"id":"...","queue":"...","attempt":1,"payload":"..."}  ("payload_base64" instead
//            when the payload is not valid UTF-8)
//   reply:   {"id":"...","ok":true,"result":"..."} or {"id":"...","ok":false,"error":"...",
//            "retry":false}  ("retry" defaults to true; "result" and "error" default to "")
#pragma once

#include <string>
#include <string_view>

namespace workq::queue {

struct HandlerRequest {
    std::string id, queue, payload;
    long long attempt = 1;
};

// The request line, '\n' included.
std::string encode_request(const HandlerRequest& request);

struct HandlerReply {
    bool valid = false;   // a JSON object with a string "id" and a boolean "ok"
    std::string problem;  // when not valid: why, for the job's error ("not valid JSON: ...")
    std::string id;
    bool ok = false;
    std::string result;  // "result" (or decoded "result_base64")
    std::string error;
    bool retry = true;
};

// Parses one reply line (without its '\n'). Never throws.
HandlerReply parse_reply(std::string_view line);

}  // namespace workq::queue
