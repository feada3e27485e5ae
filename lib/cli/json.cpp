#include "cli/json.hpp"

#include <boost/json/serialize.hpp>

#include "cli/output.hpp"
#include "util/text.hpp"
#include "util/time.hpp"

namespace workq::cli {

void put_bytes(boost::json::object& object, std::string_view name,
               const std::optional<std::string>& bytes) {
    if (!bytes) {
        object[name] = nullptr;
        return;
    }
    if (is_valid_utf8(*bytes)) {
        object[name] = boost::json::string(*bytes);
        return;
    }
    object[name] = nullptr;
    object[std::string(name) + "_base64"] = base64_encode(*bytes);
}

boost::json::value time_value(std::optional<long long> epoch_ms) {
    if (!epoch_ms) return nullptr;
    return boost::json::string(format_rfc3339(*epoch_ms));
}

void print_json_line(const boost::json::value& value) {
    write_stdout(boost::json::serialize(value));
    write_stdout("\n");
}

}  // namespace workq::cli
