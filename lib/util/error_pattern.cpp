#include "util/error_pattern.hpp"

#include <fmt/format.h>
#include <boost/regex.hpp>

#include "util/errors.hpp"
#include "util/names.hpp"
#include "util/text.hpp"

namespace workq {

// std::regex was used first: its matcher recurses once per character, and a 1 MB error made
// `workq-dlq ls --error-match` die of a stack overflow (issue 23, item 5).
struct ErrorPattern::Compiled {
    boost::regex regex;
};

ErrorPattern::ErrorPattern(std::string_view pattern) : pattern_(pattern) {
    try {
        compiled_ = std::make_unique<Compiled>(
            Compiled{boost::regex(pattern_.begin(), pattern_.end(), boost::regex::ECMAScript)});
    } catch (const std::exception& error) {
        throw UsageError(fmt::format("--error-match: invalid regex '{}': {}", printable(pattern_),
                                     printable(error.what(), 200)));
    }
}

ErrorPattern::~ErrorPattern() = default;
ErrorPattern::ErrorPattern(ErrorPattern&&) noexcept = default;
ErrorPattern& ErrorPattern::operator=(ErrorPattern&&) noexcept = default;

bool ErrorPattern::search(std::string_view text) const {
    auto tail = tail_utf8(text, max_matched_bytes);
    try {
        return boost::regex_search(tail.begin(), tail.end(), compiled_->regex);
    } catch (const std::runtime_error& error) {
        // Boost.Regex's bound on backtracking ("too complex"), or its memory bound.
        throw UsageError(fmt::format("--error-match: the regex '{}' cannot be matched: {}",
                                     printable(pattern_), printable(error.what(), 200)));
    }
}

}  // namespace workq
