// --serve ADDR: workq-status as a long-running exporter (CONTRACT.md section 12). GET /metrics is
// what --prometheus prints, computed from a fresh snapshot on each scrape; GET /livez answers
// 200 while the process runs. Runs until SIGTERM or SIGINT.
#pragma once

#include <string>
#include <vector>

#include "cli/server.hpp"
#include "http/address.hpp"

namespace workq::status {

// Serves until a signal asks it to stop; returns 0 then. Throws Error when the address cannot be
// listened on, RedisError when the server cannot be reached at the start (later, a scrape that
// cannot reach it answers 503 with the reason, and the next one reconnects).
int serve(cli::ServerSettings& server, const std::vector<std::string>& queues,
          const http::ListenAddress& address);

}  // namespace workq::status
