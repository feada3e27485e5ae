// --wait: blocks until each job ends, then writes the results of the jobs, in input order, to
// stdout. Blocks on the server (BLPOP on each job's done list), never polls.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "queue/keys.hpp"
#include "redis/connection.hpp"

namespace workq::enqueue {

enum class WaitOutcome { all_succeeded, some_failed, timed_out };

// `timeout` nullopt: wait for ever. Results go to stdout as they become printable; a job that
// ended dead or cancelled is reported on stderr with its error.
WaitOutcome wait_for_jobs(redis::Connection& connection, const queue::QueueKeys& keys,
                          const std::vector<std::string>& ids,
                          std::optional<std::chrono::milliseconds> timeout);

}  // namespace workq::enqueue
