// --error-match (lib/util/error_pattern): the input's first line is a pattern, the rest an error
// text. Whatever both are, compiling either works or throws UsageError, and a search answers or
// throws UsageError (too much backtracking): never a crash, a stack overflow or another
// exception. Only the last 4 KiB of a text count: a text grown to 1 MiB at its front gives the
// answer its last 4 KiB give (a 1 MB error once crashed std::regex).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "util/error_pattern.hpp"
#include "util/errors.hpp"

namespace {
std::optional<bool> search(const workq::ErrorPattern& pattern, std::string_view text) {
    try {
        return pattern.search(text);
    } catch (const workq::UsageError&) {
        return std::nullopt;
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto newline = input.find('\n');
    auto pattern_text = input.substr(0, newline);
    auto text = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
    std::optional<workq::ErrorPattern> pattern;
    try {
        pattern.emplace(pattern_text);
    } catch (const workq::UsageError&) {
        return 0;
    }
    search(*pattern, text);
    // A text grown to 1 MiB at its front: only its last 4 KiB are looked at.
    std::string grown(std::size_t(1) << 20, 'x');
    grown.append(text);
    auto found_in_grown = search(*pattern, grown);
    if (text.size() < workq::ErrorPattern::max_matched_bytes) {
        auto tail =
            std::string_view(grown).substr(grown.size() - workq::ErrorPattern::max_matched_bytes);
        auto found_in_tail = search(*pattern, tail);
        if (found_in_grown && found_in_tail) FUZZ_CHECK(*found_in_grown == *found_in_tail);
    }
    return 0;
}
