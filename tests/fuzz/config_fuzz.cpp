// Config files (lib/cli/config): whatever the text, merge_config_text either merges it or
// throws UsageError naming the file (never another exception, never a crash); a merged value
// has an origin "file:line" with a line inside the text; merging the same text twice gives the
// same tables (later files win key by key, so a file layered over itself changes nothing).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cli/config.hpp"
#include "fuzz_check.hpp"
#include "util/errors.hpp"

namespace {

const std::string file_name = "fuzz.toml";

bool same_tables(const workq::cli::Config& a, const workq::cli::Config& b) {
    if (a.tables.size() != b.tables.size()) return false;
    for (const auto& [table, keys] : a.tables) {
        auto other = b.tables.find(table);
        if (other == b.tables.end() || other->second.size() != keys.size()) return false;
        for (const auto& [key, value] : keys) {
            auto found = other->second.find(key);
            if (found == other->second.end() || found->second.items != value.items ||
                found->second.origin != value.origin)
                return false;
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    workq::cli::Config once;
    try {
        workq::cli::merge_config_text(once, text, file_name);
    } catch (const workq::UsageError& error) {
        FUZZ_CHECK(std::string_view(error.what()).find(file_name) != std::string_view::npos);
        return 0;
    }
    FUZZ_CHECK(once.files.size() == 1);
    auto lines = static_cast<long>(std::count(text.begin(), text.end(), '\n')) + 1;
    for (const auto& [table, keys] : once.tables) {
        for (const auto& [key, value] : keys) {
            FUZZ_CHECK(value.origin.starts_with(file_name + ":"));
            auto line = std::stol(value.origin.substr(file_name.size() + 1));
            FUZZ_CHECK(line >= 1 && line <= lines);
            FUZZ_CHECK(once.find(table, key) == &value);
        }
    }
    workq::cli::Config twice = once;
    workq::cli::merge_config_text(twice, text, file_name);
    FUZZ_CHECK(same_tables(once, twice));
    FUZZ_CHECK(twice.files.size() == 2);
    return 0;
}
