// What a careful operator wants to know about the server before trusting it with jobs.
#pragma once

#include <string>
#include <vector>

#include "redis/connection.hpp"

namespace workq::redis {

// Reads INFO and returns warnings: an eviction policy other than noeviction (Redis may drop
// jobs under memory pressure), persistence off (a restart loses jobs). Empty when all is well
// or when INFO is not allowed (an ACL): the tools must work without it.
std::vector<std::string> server_warnings(Connection& connection);

// The INFO fields (name -> value) of the given section(s), e.g. "server", "memory".
std::vector<std::pair<std::string, std::string>> info_fields(Connection& connection,
                                                             std::string_view section);

}  // namespace workq::redis
