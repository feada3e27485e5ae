#include "queue/handler_protocol.hpp"

#include <fmt/format.h>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <optional>

#include "util/text.hpp"

namespace workq::queue {

namespace {

// A JSON string: quotes, backslashes and control characters escaped, the rest as it is (the
// text is valid UTF-8 by the caller's check, as boost::json::serialize assumes too).
void append_json_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t plain_from = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text.data() + plain_from, i - plain_from);
        plain_from = i + 1;
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                out += "\\u00";
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 0xf]);
        }
    }
    out.append(text.data() + plain_from, text.size() - plain_from);
    out.push_back('"');
}

// What the reply's top-level fields held, as the SAX parser met them.
enum class Kind { absent, null, string, boolean, other };
struct Field {
    Kind kind = Kind::absent;
    std::string text;
    bool flag = false;
};

// boost::json's basic_parser handler: records the top-level fields the protocol reads and
// skips everything else (nested values included) without building anything.
struct ReplyScanner {
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);
    using error_code = boost::system::error_code;
    using string_view = boost::json::string_view;

    int depth = 0;
    bool top_is_object = false;
    std::string key;
    Field* current = nullptr;  // the field the value at depth 1 goes to, if one we read
    Field id, ok, result, result_base64, error, retry;

    Field* field_named(std::string_view name) {
        if (name == "id") return &id;
        if (name == "ok") return &ok;
        if (name == "result") return &result;
        if (name == "result_base64") return &result_base64;
        if (name == "error") return &error;
        if (name == "retry") return &retry;
        return nullptr;
    }
    // A value at depth 1 (the top object's member): replaces what its key held before.
    void set(Kind kind) {
        if (depth == 1 && current) {
            current->kind = kind;
            if (kind != Kind::string) current->text.clear();
        }
    }
    bool on_document_begin(error_code&) { return true; }
    bool on_document_end(error_code&) { return true; }
    bool on_object_begin(error_code&) {
        if (depth == 0) top_is_object = true;
        set(Kind::other);
        ++depth;
        return true;
    }
    bool on_object_end(std::size_t, error_code&) {
        --depth;
        return true;
    }
    bool on_array_begin(error_code&) {
        set(Kind::other);
        ++depth;
        return true;
    }
    bool on_array_end(std::size_t, error_code&) {
        --depth;
        return true;
    }
    bool on_key_part(string_view part, std::size_t, error_code&) {
        if (depth == 1) key.append(part.data(), part.size());
        return true;
    }
    bool on_key(string_view part, std::size_t, error_code&) {
        if (depth == 1) {
            key.append(part.data(), part.size());
            current = field_named(key);
            key.clear();
            if (current) current->text.clear();
        }
        return true;
    }
    bool on_string_part(string_view part, std::size_t, error_code&) {
        if (depth == 1 && current) current->text.append(part.data(), part.size());
        return true;
    }
    bool on_string(string_view part, std::size_t, error_code&) {
        if (depth == 1 && current) {
            current->text.append(part.data(), part.size());
            current->kind = Kind::string;
        }
        return true;
    }
    bool on_number_part(string_view, error_code&) { return true; }
    bool on_int64(std::int64_t, string_view, error_code&) {
        set(Kind::other);
        return true;
    }
    bool on_uint64(std::uint64_t, string_view, error_code&) {
        set(Kind::other);
        return true;
    }
    bool on_double(double, string_view, error_code&) {
        set(Kind::other);
        return true;
    }
    bool on_bool(bool value, error_code&) {
        set(Kind::boolean);
        if (depth == 1 && current) current->flag = value;
        return true;
    }
    bool on_null(error_code&) {
        set(Kind::null);
        return true;
    }
    bool on_comment_part(string_view, error_code&) { return true; }
    bool on_comment(string_view, error_code&) { return true; }
};

}  // namespace

void encode_request(const HandlerRequest& request, std::string& out) {
    out += "{\"id\":";
    append_json_string(out, request.id);
    out += ",\"queue\":";
    append_json_string(out, request.queue);
    out += ",\"attempt\":";
    fmt::format_int attempt(request.attempt);  // once per job: no format string to interpret
    out.append(attempt.data(), attempt.size());
    if (is_valid_utf8(request.payload)) {
        out += ",\"payload\":";
        append_json_string(out, request.payload);
    } else {
        out += ",\"payload_base64\":\"";
        out += base64_encode(request.payload);
        out += '"';
    }
    out += "}\n";
}

std::string encode_request(const HandlerRequest& request) {
    std::string out;
    encode_request(request, out);
    return out;
}

HandlerReply parse_reply(std::string_view line) {
    HandlerReply reply;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    boost::json::basic_parser<ReplyScanner> parser(boost::json::parse_options{});
    boost::system::error_code ec;
    auto used = parser.write_some(false, line.data(), line.size(), ec);
    if (!ec && used < line.size()) ec = boost::json::error::extra_data;
    if (ec) {
        reply.problem = fmt::format("the reply is not valid JSON ({})", ec.message());
        return reply;
    }
    auto& scanned = parser.handler();
    if (!scanned.top_is_object) {
        reply.problem = "the reply is not a JSON object";
        return reply;
    }
    if (scanned.id.kind != Kind::string) {
        reply.problem = "the reply has no string \"id\"";
        return reply;
    }
    reply.id = std::move(scanned.id.text);
    if (scanned.ok.kind != Kind::boolean) {
        reply.problem = "the reply has no boolean \"ok\"";
        return reply;
    }
    reply.ok = scanned.ok.flag;
    auto text = [&](std::string_view name, Field& field, std::string& out) -> bool {
        if (field.kind == Kind::absent || field.kind == Kind::null) return true;
        if (field.kind != Kind::string) {
            reply.problem = fmt::format("the reply's \"{}\" is not a string", name);
            return false;
        }
        out = std::move(field.text);
        return true;
    };
    if (!text("result", scanned.result, reply.result) || !text("error", scanned.error, reply.error))
        return reply;
    if (scanned.result_base64.kind == Kind::string) {
        auto decoded = base64_decode(scanned.result_base64.text);
        if (!decoded) {
            reply.problem = "the reply's \"result_base64\" is not base64";
            return reply;
        }
        reply.result = std::move(*decoded);
    }
    if (scanned.retry.kind != Kind::absent && scanned.retry.kind != Kind::null) {
        if (scanned.retry.kind != Kind::boolean) {
            reply.problem = "the reply's \"retry\" is not a boolean";
            return reply;
        }
        reply.retry = scanned.retry.flag;
    }
    reply.valid = true;
    return reply;
}

}  // namespace workq::queue
