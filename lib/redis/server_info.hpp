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

using InfoFields = std::vector<std::pair<std::string, std::string>>;

// The same warnings from INFO fields read already (the default sections hold what they need).
std::vector<std::string> server_warnings(const InfoFields& fields);

// The INFO fields (name -> value) of the given section(s), e.g. "server", "memory".
InfoFields info_fields(Connection& connection, std::string_view section);

}  // namespace workq::redis
