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

// Views of the job's fields: a request is written at once, never kept.
struct HandlerRequest {
    std::string_view id, queue, payload;
    long long attempt = 1;
};

// Appends the request line, '\n' included, to `out` (written directly, no JSON document in
// between: the worker reuses one buffer per slot).
void encode_request(const HandlerRequest& request, std::string& out);
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

// Parses one reply line (without its '\n') as it streams by (boost::json's SAX parser: no JSON
// document is built). Never throws. Of a key given twice, the last value counts.
HandlerReply parse_reply(std::string_view line);

}  // namespace workq::queue
