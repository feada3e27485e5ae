// A Lua script the tools run: its name for messages, its text for EVAL (SCRIPT LOAD) when the
// server does not know it, and the SHA1 of that text (computed at build time), for EVALSHA;
// on Redis >= 7, the function that runs the same body in a library of every script, for FCALL,
// and that library's text, for FUNCTION LOAD (cmake/embed_lua.cmake).
//
// How a call reaches the server (the same rules for redis/connection.hpp and
// redis/async_connection.hpp): FCALL first. A call that did not run is sent again:
//   - NOSCRIPT (EVALSHA of a script the server lost: SCRIPT FLUSH, a restart): as EVAL;
//   - "Function not found" (FUNCTION FLUSH, a restart without persistence, a new cluster
//     master, a server that never had this workq's library): after FUNCTION LOAD of the
//     library, as FCALL again; a library of that name loaded already (another process raced
//     us) is as good;
//   - FCALL unknown (Redis 6.2) or not allowed (an ACL), or FUNCTION LOAD refused (an ACL
//     without FUNCTION, a managed service that blocks it): as EVALSHA, and that connection
//     uses EVALSHA from then on (said once, at debug level);
//   - refused before it started (a function that may write, at maxmemory, with too few
//     replicas for min-replicas-to-write, or MISCONF): that call as EVALSHA, whose script is
//     refused only at its first write that needs memory (or any write), as before functions: a
//     script whose first writes free memory, or whose path writes nothing, still goes through.
//
// Every call first checks, with one EXISTS, that the slot of its keys is not migrating between
// a cluster's nodes (slot_guard in lib/lua/common/helpers.lua). A connection that knows its
// server runs with cluster mode disabled (INFO cluster said cluster_enabled:0 on that very
// connection: a single server, also one reached through Sentinel) calls the library's twin of
// each function without that check (`plain_function`); a cluster, a server that refused INFO,
// and EVALSHA and EVAL always run the guarded text.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace workq::redis {

struct Reply;

struct ScriptSource {
    std::string_view name;
    std::string_view text;
    std::string_view sha1;
    std::string_view function;        // empty: EVALSHA only
    std::string_view plain_function;  // the same without the slot guard; empty: none
    std::string_view library;
};

// Why a script call did not run, from its reply; `command` is what was sent (FCALL, EVALSHA
// or EVAL).
enum class ScriptMiss {
    none,                  // it ran (its reply may be an error the script raised)
    script_cache,          // NOSCRIPT: send it as EVAL
    library,               // the function is not loaded: FUNCTION LOAD, then FCALL again
    no_functions,          // FCALL unknown or not allowed here: EVALSHA from now on
    refused_before_start,  // OOM, NOREPLICAS, MISCONF before it started: this call as EVALSHA
};
ScriptMiss script_miss(std::string_view command, const Reply& reply);

// Whether a FUNCTION LOAD reply leaves the library loaded (loaded now, or already).
bool library_loaded(const Reply& reply);

// The function an FCALL of `script` names: its plain twin when `plain_server` (the connection
// knows cluster mode is disabled there) and the library has one, else the guarded one.
std::string_view function_for(const ScriptSource& script, bool plain_server);

// FCALL function numkeys keys... args... (or EVALSHA sha1 ... when `functions` is false).
std::vector<std::string> script_argv(const ScriptSource& script, bool functions, bool plain_server,
                                     std::span<const std::string_view> keys,
                                     std::span<const std::string_view> args);
// Turns a call's argv (as script_argv made it) into the form `miss` asks for: FCALL (of the
// function function_for names), EVALSHA, or EVAL with the script's text.
enum class ScriptForm { fcall, evalsha, eval };
void set_script_form(std::vector<std::string>& argv, const ScriptSource& script, ScriptForm form,
                     bool plain_server);

}  // namespace workq::redis
