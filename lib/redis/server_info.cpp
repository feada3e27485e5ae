#include "redis/server_info.hpp"

#include "redis/url.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
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

ReplicationInfo replication_info(const InfoFields& fields) {
    ReplicationInfo info;
    long long master_offset = -1;
    auto number = [](std::string_view text) {
        long long value = -1;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        return ec == std::errc{} && end == text.data() + text.size() ? value : -1;
    };
    std::vector<std::pair<ReplicaInfo, long long>> replicas;  // with each one's offset
    for (const auto& [name, value] : fields) {
        if (name == "role") {
            info.role = value;
        } else if (name == "master_repl_offset") {
            master_offset = number(value);
        } else if (name.starts_with("slave") && name.size() > 5 &&
                   std::all_of(name.begin() + 5, name.end(),
                               [](char c) { return c >= '0' && c <= '9'; })) {
            // ip=10.0.0.2,port=6379,state=online,offset=1234,lag=0
            ReplicaInfo replica;
            std::string host, port;
            long long offset = -1;
            std::stringstream items(value);
            for (std::string item; std::getline(items, item, ',');) {
                auto eq = item.find('=');
                if (eq == std::string::npos) continue;
                auto key = item.substr(0, eq), text = item.substr(eq + 1);
                if (key == "ip")
                    host = text;
                else if (key == "port")
                    port = text;
                else if (key == "state")
                    replica.state = text;
                else if (key == "offset")
                    offset = number(text);
                else if (key == "lag")
                    replica.lag_s = number(text);
            }
            replica.address = host_port(host, static_cast<int>(number(port)));
            replicas.emplace_back(std::move(replica), offset);
        }
    }
    for (auto& [replica, offset] : replicas) {
        if (offset >= 0 && master_offset >= 0) replica.behind_bytes = master_offset - offset;
        replica.in_sync =
            replica.state == "online" && replica.lag_s >= 0 && replica.lag_s <= replica_max_lag_s;
        info.replicas.push_back(std::move(replica));
    }
    return info;
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
