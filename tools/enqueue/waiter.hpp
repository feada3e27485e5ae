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
// What ends each job's record on stdout: a newline, or NUL with -0.
enum class Separator { newline, nul };

// `timeout` nullopt: wait for ever. Results go to stdout as they become printable, each ended
// by the separator unless it ends with one already; a job that ended dead or cancelled gets an
// empty record and a line on stderr with its error. After a few seconds, says on stderr when
// no live worker serves the queue. A lost server is connected to again for a while; when it
// stays away, throws RedisError naming every job not yet reported (-q shows errors). The
// timeout, too, names the jobs still pending.
WaitOutcome wait_for_jobs(redis::Connection& connection, const queue::QueueKeys& keys,
                          const std::string& namespace_name, const std::vector<std::string>& ids,
                          std::optional<std::chrono::milliseconds> timeout, Separator separator);

}  // namespace workq::enqueue
