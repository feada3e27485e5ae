// Points in time (lib/util/time, --at): parse_time never throws; a parsed time is not before
// the epoch; what format_rfc3339 writes parses back to the same millisecond; the relative form
// is never empty.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "util/time.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = workq::parse_time(text);
    if (!parsed) return 0;
    FUZZ_CHECK(*parsed >= 0);
    auto formatted = workq::format_rfc3339(*parsed);
    FUZZ_CHECK(formatted.size() >= 24 && formatted.back() == 'Z');
    auto again = workq::parse_time(formatted);
    FUZZ_CHECK(again && *again == *parsed);
    FUZZ_CHECK(!workq::format_relative(*parsed, 1'764'064'800'000LL).empty());
    return 0;
}
