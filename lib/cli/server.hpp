// Which server the tools talk to and under which key prefix, resolved with the contract's
// precedence: command-line flag, WORKQ_* environment, config file, REDIS_URL, built-in default
// (the embedded server).
#pragma once

#include <string>

#include "cli/config.hpp"
#include "cli/options.hpp"
#include "redis/connection.hpp"
#include "redis/url.hpp"

namespace workq::cli {

struct ServerSettings {
    redis::Endpoint endpoint;
    bool embedded = false;  // no server configured: use (and maybe start) the private one
    std::string namespace_name = "workq";
    std::string source;  // where the URL came from, for `workq-status`: "--redis", ...
};

// Resolves the settings. Throws UsageError for a malformed URL (naming where it came from:
// "--redis", "WORKQ_REDIS_URL", "file:line" or "REDIS_URL"), namespace, or an unreadable or empty
// password file. Warns when a password sits on the command line. Then takes
// WORKQ_REDIS_PASSWORD, WORKQ_SENTINEL_PASSWORD, and a WORKQ_REDIS_URL or REDIS_URL holding a
// password, out of the process's environment (util/hardening.hpp): a second call does not see
// them.
ServerSettings resolve_server(const CommonOptions& options, const Config& config,
                              const std::string& tool);

// Connects (starting the embedded server if that is the one, with a notice on stderr when it
// is started). Throws RedisError (exit 3) when the server cannot be reached within the
// connect timeout.
redis::Connection connect(ServerSettings& settings, redis::Timeouts timeouts = {});

}  // namespace workq::cli
