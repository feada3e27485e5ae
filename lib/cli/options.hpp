// The options every tool has (CONTRACT.md sections 1 and 2), and the steps every tool takes
// after parsing its command line: read the config file, apply it, set up logging.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "cli/config.hpp"

namespace CLI {
class App;
class Validator;
}  // namespace CLI

namespace workq::cli {

struct CommonOptions {
    std::string redis_url;
    std::string password_file;
    std::string tls_ca_cert;  // CONTRACT.md section 10; resolve_server() ranks them
    std::string tls_cert;
    std::string tls_key;
    std::string tls_server_name;
    std::string namespace_name;
    std::string config_file;
    bool quiet = false;
    std::string log_level = "info";
    std::string log_format = "human";
};

// Adds --redis, --password-file, --tls-ca-cert, --tls-cert, --tls-key, --tls-server-name,
// --namespace, --config, -q/--quiet, --log-level, --log-format,
// --version and the help text's shared sections.
void add_common_options(CLI::App& app, CommonOptions& options);

// Refuses an empty value: options whose empty value would mean "not given" (`--id "$ID"` with an
// empty $ID would silently make a new job on every run).
CLI::Validator not_empty();

// A CLI11 app with workq's conventions: the description, a footer (output, environment, exit
// status, examples) and the formatter's width.
void describe_tool(CLI::App& app, const std::string& footer);

// Thrown by parse_command_line for --help and --version: the runner prints `text` on stdout and
// exits 0.
struct HelpRequested {
    std::string text;
};

// app.parse() with workq's conventions: help and version become HelpRequested, any other parse
// error a UsageError naming the flag ("--concurrency: Value abc not in range ...").
void parse_command_line(CLI::App& app, int argc, char** argv);

// A password in --redis (or --redis=) is visible in /proc/<pid>/cmdline to every user of the
// machine for as long as the tool runs (a worker: for weeks). When one is there, the command
// line the process list shows becomes the arguments joined by spaces with each such password
// written "***", overwriting the whole argument area so that not even the password's length
// is left (util/hardening.hpp). Only the moment from exec to here remains, which is why the
// tools still warn about it. Arguments after "--" (payloads, COMMAND) are never touched. The
// runner calls it on the real argv after making the copy the tool parses.
void hide_passwords_in_argv(char** argv);

// After parse_command_line(): gives options the command line left unset the values of the
// tool's environment variables (WORKQ_<TOOL>_<KEY>), then loads the config (the --config flag,
// then WORKQ_CONFIG, then the layered defaults) and applies the tool's table to options still
// unset, and configures logging. Unknown keys and variables are warnings. Returns the config
// for the connection settings; `from_environment`, when given, gets the variables applied, by
// key.
Config finish_options(CLI::App& app, CommonOptions& options, const std::string& tool,
                      std::map<std::string, std::string>* from_environment = nullptr);

// The explicit config file: --config, else WORKQ_CONFIG; nullopt means the layered defaults.
std::optional<std::string> explicit_config_file(const CommonOptions& options);

}  // namespace workq::cli
