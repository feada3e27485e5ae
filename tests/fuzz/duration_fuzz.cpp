// Durations (lib/util/duration): whatever the text, parse_duration answers a value or nullopt
// and never throws; a value is within 0 .. 100 years; what format_duration writes reads back
// as the same value; parse_duration_or_throw agrees and throws only UsageError.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"

namespace {
constexpr long long century_ms = 100LL * 365 * 24 * 3600 * 1000;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = workq::parse_duration(text);
    try {
        auto thrown = workq::parse_duration_or_throw(text, "--timeout");
        FUZZ_CHECK(parsed && *parsed == thrown);
    } catch (const workq::UsageError&) {
        FUZZ_CHECK(!parsed);
    }
    if (!parsed) return 0;
    auto ms = parsed->count();
    FUZZ_CHECK(ms >= 0 && ms <= century_ms);
    auto formatted = workq::format_duration(*parsed);
    auto again = workq::parse_duration(formatted);
    FUZZ_CHECK(again && *again == *parsed);
    FUZZ_CHECK(!workq::format_duration_short(*parsed).empty());
    return 0;
}
