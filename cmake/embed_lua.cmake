# Generates a C++ source that embeds every Lua script of lib/lua in the two forms the tools send:
#   - an EVAL text: lib/lua/common/*.lua (shared helpers), then the script, with its SHA1 (that
#     of the full text the server will see), for EVALSHA on every server (Redis 6.2, or where
#     FUNCTION LOAD is refused);
#   - one function library holding every script (Redis >= 7: FUNCTION LOAD once, then FCALL),
#     so that the helpers are defined once when the library loads, not on every call. Each
#     script's body is defined once, as a function of the table workq_bodies, and registered
#     twice: guarded by slot_guard (helpers.lua) as its EVAL text is, and plain (name ending in
#     _n) for a client that knows its server runs with cluster mode disabled, where no slot can
#     migrate and the guard's EXISTS is pure cost (redis/script.hpp says who calls which):
#       #!lua name=workq_<hash>
#       <helpers>
#       local workq_bodies = {}
#       workq_bodies.<script> = function(KEYS, ARGV) <script>
#       end
#       redis.register_function{function_name='workq_<hash>_<script>', flags={...},
#           callback=function(KEYS, ARGV) slot_guard(KEYS); return workq_bodies.<script>(KEYS, ARGV) end}
#       redis.register_function{function_name='workq_<hash>_<script>_n', flags={...},
#                               callback=workq_bodies.<script>}
#     <hash> is taken from the library's text: function names are global on a server, and two
#     workq versions sharing one server must not replace each other's. The load-time code uses
#     locals and redis.register_function only (FUNCTION LOAD offers no other globals then).
# The EVAL text always calls slot_guard before the body (the EVALSHA path is always guarded).
#   cmake -DOUTPUT=<file.cpp> -DSOURCES="a.lua;b.lua" -DPREAMBLE="common/x.lua" -P embed_lua.cmake
cmake_policy(SET CMP0057 NEW)  # if(IN_LIST) in script mode
string(REPLACE "|" ";" SOURCES "${SOURCES}")
string(REPLACE "|" ";" PREAMBLE "${PREAMBLE}")

# Scripts that never write, in any path: flagged no-writes (they run at maxmemory and on replicas,
# as their EVAL does). Every other function has no flags: at maxmemory Redis refuses it before it
# starts, and the client sends that call as EVALSHA instead, which keeps today's behaviour exactly
# (refused at its first write that needs memory; redis/connection.hpp). allow-cross-slot-keys on
# every function, as EVAL without flags allows: a script touches the keys of its own slot only.
set(read_only job_info job_rows schedule_rows stats)

set(preamble "")
foreach(src IN LISTS PREAMBLE)
    file(READ "${src}" text)
    string(APPEND preamble "${text}")
endforeach()

# The helpers' top-level locals: a function's body reaches them as upvalues, at most 60 per
# function in Lua 5.1 (LUAI_MAXUPVALUES); the library would fail to load past that. Counted
# here from the names each body mentions (an overestimate: a local of the body with a helper's
# name counts too). The guarded callback reaches two (slot_guard and workq_bodies), the plain
# one is the body itself.
string(REGEX MATCHALL "\nlocal (function )?[A-Za-z_][A-Za-z0-9_]*" helper_decls "\n${preamble}")
set(helper_names "")
foreach(decl IN LISTS helper_decls)
    string(REGEX REPLACE "^\nlocal (function )?" "" decl_name "${decl}")
    list(APPEND helper_names "${decl_name}")
endforeach()
list(REMOVE_DUPLICATES helper_names)

set(library_body "local workq_bodies = {}\n")
set(eval_texts "")
set(script_names "")
foreach(src IN LISTS SOURCES)
    get_filename_component(name "${src}" NAME_WE)
    list(APPEND script_names "${name}")
endforeach()
foreach(src IN LISTS SOURCES)
    get_filename_component(name "${src}" NAME_WE)
    # The plain function's name must not be another script's guarded one.
    if("${name}_n" IN_LIST script_names)
        message(FATAL_ERROR "lib/lua/${name}_n.lua: the name is taken by ${name}.lua's function "
                            "without the slot guard (workq_<hash>_${name}_n)")
    endif()
    file(READ "${src}" text)
    set(used 0)
    foreach(helper IN LISTS helper_names)
        if("${text}" MATCHES "(^|[^A-Za-z0-9_.])${helper}([^A-Za-z0-9_]|$)")
            math(EXPR used "${used} + 1")
        endif()
    endforeach()
    if(used GREATER 55)
        message(FATAL_ERROR "lib/lua/${name}.lua uses ${used} of the helpers' locals: a function "
                            "of the library may reach at most 60 (Lua 5.1's upvalues)")
    endif()
    set(flags "'allow-cross-slot-keys'")
    if(name IN_LIST read_only)
        set(flags "'no-writes', 'allow-cross-slot-keys'")
    endif()
    # The guard's call goes on the body's first line: the EVAL text keeps its line numbers.
    list(APPEND eval_texts "${name}")
    set(eval_${name} "${preamble}slot_guard(KEYS); ${text}")
    string(APPEND library_body
           "workq_bodies.${name} = function(KEYS, ARGV) ${text}\nend\n"
           "redis.register_function{function_name='workq_@HASH@_${name}', flags={${flags}}, "
           "callback=function(KEYS, ARGV) slot_guard(KEYS); return workq_bodies.${name}(KEYS, ARGV) end}\n"
           "redis.register_function{function_name='workq_@HASH@_${name}_n', flags={${flags}}, "
           "callback=workq_bodies.${name}}\n")
endforeach()

set(library "#!lua name=workq_@HASH@\n${preamble}\n${library_body}")
string(SHA1 library_sha "${library}")
string(SUBSTRING "${library_sha}" 0 12 hash)
string(REPLACE "@HASH@" "${hash}" library "${library}")

set(body "// Generated by cmake/embed_lua.cmake from lib/lua/*.lua. Do not edit.\n")
string(APPEND body "#include \"queue/scripts.hpp\"\n\nnamespace workq::queue {\n\n")
string(APPEND body "static const char library_text[] = R\"workq_lua(${library})workq_lua\";\n")
string(APPEND body "static constexpr std::string_view library{library_text, sizeof(library_text) - 1};\n")
set(table "")
foreach(name IN LISTS eval_texts)
    set(full "${eval_${name}}")
    string(SHA1 sha "${full}")
    string(APPEND body "static const char ${name}_text[] = R\"workq_lua(${full})workq_lua\";\n")
    string(APPEND table "        {\"${name}\", {${name}_text, sizeof(${name}_text) - 1}, \"${sha}\",\n"
                        "         \"workq_${hash}_${name}\", \"workq_${hash}_${name}_n\", library},\n")
endforeach()
string(APPEND body "\nconst std::vector<ScriptSource>& embedded_scripts() {\n")
string(APPEND body "    static const std::vector<ScriptSource> scripts{\n${table}    };\n    return scripts;\n}\n\n")
string(APPEND body "std::string_view embedded_library() { return library; }\n\n")
string(APPEND body "std::string_view embedded_library_name() { return \"workq_${hash}\"; }\n\n")
string(APPEND body "}  // namespace workq::queue\n")
file(WRITE "${OUTPUT}.tmp" "${body}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
