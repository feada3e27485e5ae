#include "resp_framer.hpp"

#include <charconv>
#include <optional>

namespace workq::fault {
namespace {

constexpr int max_depth = 32;
constexpr std::size_t word_limit = 64;
constexpr std::size_t words_limit = 1024;

// The end of a value starting at `pos`, or the reason there is none (yet).
struct Step {
    Scan status;
    std::size_t end = 0;
};

std::optional<long long> number(std::string_view text) {
    long long value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

Step scan_from(std::string_view bytes, std::size_t pos, int depth) {
    if (depth > max_depth) return {Scan::malformed};
    if (pos >= bytes.size()) return {Scan::incomplete};
    auto eol = bytes.find("\r\n", pos);
    if (eol == std::string_view::npos) return {Scan::incomplete};
    char type = bytes[pos];
    auto head = bytes.substr(pos + 1, eol - pos - 1);
    std::size_t next = eol + 2;
    switch (type) {
        case '+':
        case '-':
        case ':':
        case '_':
        case ',':
        case '#':
        case '(':
            return {Scan::complete, next};
        case '$':
        case '!':
        case '=': {
            auto size = number(head);
            if (!size) return {Scan::malformed};
            if (*size < 0) return {Scan::complete, next};
            auto end = next + static_cast<std::size_t>(*size);
            if (bytes.size() < end + 2) return {Scan::incomplete};
            if (bytes[end] != '\r' || bytes[end + 1] != '\n') return {Scan::malformed};
            return {Scan::complete, end + 2};
        }
        case '*':
        case '~':
        case '>':
        case '%':
        case '|': {
            auto count = number(head);
            if (!count) return {Scan::malformed};
            if (*count < 0) return {Scan::complete, next};
            long long elements = (type == '%' || type == '|') ? *count * 2 : *count;
            for (long long i = 0; i < elements; ++i) {
                auto step = scan_from(bytes, next, depth + 1);
                if (step.status != Scan::complete) return step;
                next = step.end;
            }
            // An attribute map comes before the value it annotates.
            if (type == '|') return scan_from(bytes, next, depth + 1);
            return {Scan::complete, next};
        }
        default:
            return {Scan::malformed};
    }
}

void add_word(std::string& words, std::string_view word) {
    if (words.size() >= words_limit) return;
    if (!words.empty()) words += ' ';
    words.append(word.substr(0, word_limit));
}

// A command not (yet) scanned: why.
ScannedCommand unfinished(Scan status) {
    return {status, 0, {}};
}

}  // namespace

ScannedValue scan_value(std::string_view bytes) {
    auto step = scan_from(bytes, 0, 0);
    return {step.status, step.status == Scan::complete ? step.end : 0};
}

ScannedCommand scan_command(std::string_view bytes) {
    if (bytes.empty()) return unfinished(Scan::incomplete);
    if (bytes[0] != '*') {
        // An inline command: one line, words separated by spaces.
        auto eol = bytes.find('\n');
        if (eol == std::string_view::npos) return unfinished(Scan::incomplete);
        auto line = bytes.substr(0, eol);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return {Scan::complete, eol + 1, std::string(line.substr(0, words_limit))};
    }
    auto eol = bytes.find("\r\n");
    if (eol == std::string_view::npos) return unfinished(Scan::incomplete);
    auto count = number(bytes.substr(1, eol - 1));
    if (!count) return unfinished(Scan::malformed);
    ScannedCommand command;
    std::size_t next = eol + 2;
    for (long long i = 0; i < *count; ++i) {
        if (next >= bytes.size()) return unfinished(Scan::incomplete);
        if (bytes[next] != '$') return unfinished(Scan::malformed);
        auto step = scan_from(bytes, next, 1);
        if (step.status != Scan::complete) return unfinished(step.status);
        auto data_start = bytes.find("\r\n", next) + 2;
        if (step.end < data_start + 2) return unfinished(Scan::malformed);  // a null bulk string
        auto word = bytes.substr(data_start, step.end - 2 - data_start);
        add_word(command.words, word);
        next = step.end;
    }
    command.status = Scan::complete;
    command.length = next;
    return command;
}

}  // namespace workq::fault
