#include "redis/script.hpp"

#include "redis/reply.hpp"

namespace workq::redis {

ScriptMiss script_miss(std::string_view command, const Reply& reply) {
    if (!reply.is_error()) return ScriptMiss::none;
    std::string_view text = reply.text;
    if (command == "EVALSHA")
        return text.starts_with("NOSCRIPT") ? ScriptMiss::script_cache : ScriptMiss::none;
    if (command != "FCALL") return ScriptMiss::none;
    // Redis 7: "ERR Function not found"; checked before the function runs.
    if (text.starts_with("ERR Function not found")) return ScriptMiss::library;
    // Redis 6.2 ("ERR unknown command 'FCALL'..."), or an ACL without FCALL ("NOPERM this user
    // has no permissions to run the 'fcall' command"): refused before anything ran.
    if (text.starts_with("ERR unknown command") ||
        (text.starts_with("NOPERM") && text.find("'fcall'") != std::string_view::npos))
        return ScriptMiss::no_functions;
    // A function that may write is refused before it starts at maxmemory (no allow-oom), with
    // too few replicas (min-replicas-to-write) or a failing disk (MISCONF), and never later:
    // Redis checks these for a function only then. Its EVAL was refused only at its first
    // write (a path that writes nothing, or frees memory first, went through).
    if (text.starts_with("OOM") || text.starts_with("NOREPLICAS") || text.starts_with("MISCONF"))
        return ScriptMiss::refused_before_start;
    return ScriptMiss::none;
}

bool library_loaded(const Reply& reply) {
    return !reply.is_error() || (reply.text.starts_with("ERR Library") &&
                                 reply.text.find("already exists") != std::string::npos);
}

std::string_view function_for(const ScriptSource& script, bool plain_server) {
    return plain_server && !script.plain_function.empty() ? script.plain_function : script.function;
}

std::vector<std::string> script_argv(const ScriptSource& script, bool functions, bool plain_server,
                                     std::span<const std::string_view> keys,
                                     std::span<const std::string_view> args) {
    std::vector<std::string> argv;
    argv.reserve(3 + keys.size() + args.size());
    bool fcall = functions && !script.function.empty();
    argv.emplace_back(fcall ? "FCALL" : "EVALSHA");
    argv.emplace_back(fcall ? function_for(script, plain_server) : script.sha1);
    argv.emplace_back(std::to_string(keys.size()));
    for (auto key : keys)
        argv.emplace_back(key);
    for (auto arg : args)
        argv.emplace_back(arg);
    return argv;
}

void set_script_form(std::vector<std::string>& argv, const ScriptSource& script, ScriptForm form,
                     bool plain_server) {
    switch (form) {
        case ScriptForm::fcall:
            argv[0] = "FCALL";
            argv[1] = function_for(script, plain_server);
            break;
        case ScriptForm::evalsha:
            argv[0] = "EVALSHA";
            argv[1] = script.sha1;
            break;
        case ScriptForm::eval:
            argv[0] = "EVAL";
            argv[1] = script.text;
            break;
    }
}

}  // namespace workq::redis
