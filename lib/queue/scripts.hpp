// The queue's Lua scripts (lib/lua/*.lua), embedded at build time by cmake/embed_lua.cmake: each
// as an EVAL text, and all of them as one function library.
#pragma once

#include <string_view>
#include <vector>

#include "redis/script.hpp"

namespace workq::queue {

using redis::ScriptSource;

// Every embedded script, in file-name order.
const std::vector<ScriptSource>& embedded_scripts();

// The function library holding every script (Redis >= 7: FUNCTION LOAD), and its name
// ("workq_" and a hash of its text).
std::string_view embedded_library();
std::string_view embedded_library_name();

// The script named `name` (the file name without .lua). Throws std::logic_error when there is
// none: a typo in the code, caught by the unit tests.
const ScriptSource& script(std::string_view name);

}  // namespace workq::queue
