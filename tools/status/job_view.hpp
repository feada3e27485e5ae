// `workq-status job ID...`: each job's state, attempts, result and last error.
#pragma once

#include <string>
#include <vector>

#include "redis/connection.hpp"

namespace workq::status {

// Prints one block (or one JSON line) per id, in order; unknown ids print as "unknown" and are
// reported on stderr. Returns the number of unknown ids.
std::size_t show_jobs(redis::Connection& connection, const std::string& namespace_name,
                      const std::vector<std::string>& ids, bool json);

}  // namespace workq::status
