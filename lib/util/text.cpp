#include "util/text.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <vector>

namespace workq {
namespace {

// Length of the valid UTF-8 sequence starting at `s[i]`, or 0 when it is not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80) return 1;
    std::size_t length = 0;
    unsigned min = 0;
    unsigned code = 0;
    if ((c & 0xe0) == 0xc0)
        length = 2, code = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        length = 3, code = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        length = 4, code = c & 0x07, min = 0x10000;
    else
        return 0;
    if (i + length > s.size()) return 0;
    for (std::size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) return 0;
        code = (code << 6) | (byte(i + k) & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
    return length;
}

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

bool is_valid_utf8(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size();) {
        auto length = utf8_sequence(bytes, i);
        if (length == 0) return false;
        i += length;
    }
    return true;
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                     (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                     static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (i < bytes.size()) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    static const std::array<int, 256> table = [] {
        std::array<int, 256> t{};
        t.fill(-1);
        for (int k = 0; k < 64; ++k)
            t[static_cast<unsigned char>(alphabet[k])] = k;
        return t;
    }();
    while (!text.empty() && text.back() == '=')
        text.remove_suffix(1);
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    unsigned buffer = 0;
    int bits = 0;
    for (char c : text) {
        int value = table[static_cast<unsigned char>(c)];
        if (value < 0) return std::nullopt;
        buffer = (buffer << 6) | static_cast<unsigned>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xff);
        }
    }
    return out;
}

std::string one_line(std::string_view text, std::size_t max_chars) {
    std::string out;
    std::size_t chars = 0;
    for (std::size_t i = 0; i < text.size();) {
        if (chars >= max_chars) {
            out += "…";
            break;
        }
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == '\n') {
            if (i + 1 < text.size()) out += " …";
            break;
        }
        auto length = utf8_sequence(text, i);
        if (length == 0) {
            out += fmt::format("\\x{:02x}", c);
            ++i;
        } else if (length == 1 && (c < 0x20 || c == 0x7f)) {
            out += c == '\t'   ? std::string("\\t")
                   : c == '\r' ? std::string("\\r")
                               : fmt::format("\\x{:02x}", c);
            ++i;
        } else if (length == 2 && c == 0xc2 && static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
            // C1 controls (U+0080..U+009F): some terminals obey U+009B as ESC [.
            out += fmt::format("\\u{:04x}", static_cast<unsigned char>(text[i + 1]));
            i += length;
        } else {
            out.append(text.substr(i, length));
            i += length;
        }
        ++chars;
    }
    return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above = row[j];
            row[j] = std::min({above + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string_view tail_utf8(std::string_view text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) return text;
    auto tail = text.substr(text.size() - max_bytes);
    std::size_t skip = 0;
    while (skip < tail.size() && skip < 3 &&
           (static_cast<unsigned char>(tail[skip]) & 0xC0) == 0x80)
        ++skip;
    return tail.substr(skip);
}

std::string prometheus_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

}  // namespace workq
