// --check: a monitoring-plugin verdict on a snapshot. Exit 0 OK, 1 WARNING, 2 CRITICAL,
// 3 UNKNOWN; one line on stdout: "WORKQ CRITICAL: mail: 1200 waiting > 1000 | perfdata".
#pragma once

#include <optional>
#include <string>

#include "snapshot.hpp"

namespace workq::status {

// Whether the server's own configuration (an evicting maxmemory-policy, persistence off) makes
// the verdict WARNING: --no-server-warnings says the user knows.
enum class ServerWarnings { warn, ignore };

struct Thresholds {
    std::optional<long long> max_depth, warn_max_depth;
    std::optional<queue::Millis> max_age, warn_max_age;
    std::optional<long long> min_workers, warn_min_workers;
    std::optional<long long> max_dead, warn_max_dead;
    std::string worker;  // --worker NAME: live and not in error
    ServerWarnings server_warnings = ServerWarnings::warn;
};

struct Verdict {
    int code = 0;  // 0..3
    std::string line;
};

// `scope`: the queues named on the command line (empty: all), for --min-workers.
Verdict check(const Snapshot& snapshot, const Thresholds& thresholds,
              const std::vector<std::string>& scope);

}  // namespace workq::status
