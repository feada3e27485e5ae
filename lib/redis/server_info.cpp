#include "redis/server_info.hpp"

#include <fmt/format.h>
#include <sstream>

namespace workq::redis {

InfoFields info_fields(Connection& connection, std::string_view section) {
    InfoFields fields;
    auto reply =
        section.empty() ? connection.command({"INFO"}) : connection.command({"INFO", section});
    if (!reply.is_string()) return fields;
    std::stringstream text(reply.text);
    for (std::string line; std::getline(text, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line.front() == '#') continue;
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        fields.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    }
    return fields;
}

std::vector<std::string> server_warnings(Connection& connection) {
    return server_warnings(info_fields(connection, ""));
}

std::vector<std::string> server_warnings(const InfoFields& fields) {
    std::vector<std::string> warnings;
    std::string policy, aof;
    for (const auto& [name, value] : fields) {
        if (name == "maxmemory_policy")
            policy = value;
        else if (name == "aof_enabled")
            aof = value;
    }
    if (!policy.empty() && policy != "noeviction")
        warnings.push_back(
            fmt::format("the server's maxmemory-policy is {}: under memory pressure Redis may "
                        "evict jobs; set it to noeviction",
                        policy));
    if (aof == "0")
        warnings.push_back(
            "the server's append-only file is off: a restart can lose recent jobs (appendonly "
            "yes)");
    return warnings;
}

}  // namespace workq::redis
