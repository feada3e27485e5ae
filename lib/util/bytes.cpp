#include "util/bytes.hpp"

#include <charconv>

namespace workq {

std::optional<std::size_t> parse_size(std::string_view text) {
    std::size_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end == text.data()) return std::nullopt;
    std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    std::size_t factor = 1;
    if (unit.empty() || unit == "B" || unit == "b")
        factor = 1;
    else if (unit == "k" || unit == "K" || unit == "KiB" || unit == "KB" || unit == "kB")
        factor = 1024;
    else if (unit == "M" || unit == "m" || unit == "MiB" || unit == "MB")
        factor = 1024 * 1024;
    else if (unit == "G" || unit == "g" || unit == "GiB" || unit == "GB")
        factor = 1024UL * 1024 * 1024;
    else
        return std::nullopt;
    if (value > (std::size_t{1} << 40) / factor) return std::nullopt;
    return value * factor;
}

}  // namespace workq
