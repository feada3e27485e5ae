// A Lua script the tools run with EVALSHA: its name for messages, its text for SCRIPT LOAD
// when the server does not know it, and the SHA1 of that text (computed at build time).
#pragma once

#include <string_view>

namespace workq::redis {

struct ScriptSource {
    std::string_view name;
    std::string_view text;
    std::string_view sha1;
};

}  // namespace workq::redis
