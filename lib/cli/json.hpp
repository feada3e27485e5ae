// JSON output: one document or one object per line, always valid JSON. Bytes that are not
// valid UTF-8 (payloads, results) go in a "<name>_base64" member instead of "<name>".
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace workq::cli {

// Sets object[name] to the bytes as a JSON string when they are valid UTF-8, else sets
// object[name + "_base64"]. Nothing is set for nullopt... except name: null.
void put_bytes(boost::json::object& object, std::string_view name,
               const std::optional<std::string>& bytes);

// Epoch milliseconds as RFC 3339, or null.
boost::json::value time_value(std::optional<long long> epoch_ms);

// Serializes and writes one line to stdout.
void print_json_line(const boost::json::value& value);

}  // namespace workq::cli
