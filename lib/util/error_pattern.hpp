// A user's regular expression over job errors (workq-dlq --error-match).
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace workq {

class ErrorPattern {
  public:
    // Texts are matched on their last max_matched_bytes only: stored errors are capped to
    // that (their last 4 KiB), and a longer text written before the cap must not make a
    // match cost more than one of a capped error.
    static constexpr std::size_t max_matched_bytes = 4096;

    // ECMAScript syntax. Throws UsageError naming the pattern and what is wrong with it.
    explicit ErrorPattern(std::string_view pattern);
    ~ErrorPattern();
    ErrorPattern(ErrorPattern&&) noexcept;
    ErrorPattern& operator=(ErrorPattern&&) noexcept;

    // Whether the pattern matches anywhere in (the last max_matched_bytes of) `text`. The
    // engine (Boost.Regex) runs without recursion, so no input can overflow the stack; a
    // pattern that backtracks too much on a text throws UsageError saying so.
    bool search(std::string_view text) const;

    const std::string& text() const { return pattern_; }

  private:
    struct Compiled;
    std::string pattern_;
    std::unique_ptr<Compiled> compiled_;
};

}  // namespace workq
