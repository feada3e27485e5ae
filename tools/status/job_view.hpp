// `workq-status job ID...`: each job's state, attempts, result and last error.
#pragma once

#include <string>
#include <vector>

#include "redis/connection.hpp"

namespace workq::status {

// Prints one block (or one JSON line) per id, in order; unknown ids print as "unknown" and are
// reported on stderr, as are damaged jobs (shown with what can be read: `damaged`). Returns the
// number of unknown or damaged ids.
std::size_t show_jobs(redis::Connection& connection, const std::string& namespace_name,
                      const std::vector<std::string>& ids, bool json);

}  // namespace workq::status
