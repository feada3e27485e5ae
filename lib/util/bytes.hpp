// Sizes as users write them: "1048576", "512k", "1M", "1MiB", "2G" (binary multiples).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace workq {

std::optional<std::size_t> parse_size(std::string_view text);

}  // namespace workq
