// The configuration file: TOML, layered as the contract says.
//   /etc/workq/config.toml, then $XDG_CONFIG_HOME/workq/config.toml (default ~/.config) over it;
//   --config FILE or WORKQ_CONFIG names the only file read.
// Top level: `namespace`; table [redis]: `url`, `password_file`, `sentinel_password_file`; one
// table per tool ([work], [enqueue], ...) whose keys are the tool's long flags:
// `[work] concurrency = 4`.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace workq::cli {

struct ConfigValue {
    std::vector<std::string> items;  // one for a scalar, several for an array
    std::string origin;              // "file:line", for messages
};

struct Config {
    // table name ("" for the top level) -> key -> value
    std::map<std::string, std::map<std::string, ConfigValue>> tables;
    // table name -> "file:line" of its header, for messages about the table itself
    std::map<std::string, std::string> table_origins;
    std::vector<std::filesystem::path> files;  // the files that were read, in order

    const ConfigValue* find(const std::string& table, const std::string& key) const;
};

// Which files to read: the explicit one when given, else the layered defaults.
std::vector<std::filesystem::path> config_files(const std::optional<std::string>& explicit_file);

// Merges TOML `text` into `config` as if read from `file` (named in messages), later keys over
// earlier ones. Throws UsageError naming the file and line when the text is malformed or holds a
// value no option can take (a nested table, an array of tables). load_config reads each file
// through it; the fuzz target calls it directly.
void merge_config_text(Config& config, std::string_view text, const std::filesystem::path& file);

// Reads and merges the files. A missing default file is skipped; a missing explicit file, an
// unreadable file or malformed TOML throws UsageError naming the file and line.
Config load_config(const std::optional<std::string>& explicit_file);

// Keys that the connection settings read themselves, because the environment ranks between
// the command line and the file for them.
bool is_connection_key(std::string_view key);

// The environment variable that stands for key `key` of tool `tool`'s table:
// WORKQ_<TOOL>_<KEY>, upper case, '-' as '_' (work, shutdown-timeout: WORKQ_WORK_SHUTDOWN_TIMEOUT).
std::string environment_variable(std::string_view tool, std::string_view key);

// Gives each long option of `app` that the command line left unset the value of its
// environment variable (environment_variable(tool, key)), when that is set and not empty: the
// environment ranks between the command line and the config file (CONTRACT.md section 2), so
// call it before apply_config. A flag takes true/false (or 1/0). The connection keys (redis,
// password-file, namespace, config) have variables of their own and are not read this way.
// Variables of the tool's prefix that name no option are reported through `warn`; a value the
// option refuses throws UsageError naming the variable. Returns the variables applied, by key.
std::map<std::string, std::string> apply_environment(
    CLI::App& app, const std::string& tool, const std::function<void(const std::string&)>& warn);

// Gives each option of `app` that the command line left unset the value of the key of the same
// name in table `tool` (a flag takes true/false). Keys naming no option are reported through
// `warn` ("unknown key 'x' in [work] (file:3)"); values the option refuses throw UsageError
// naming the file and line.
void apply_config(CLI::App& app, const Config& config, const std::string& tool,
                  const std::function<void(const std::string&)>& warn);

}  // namespace workq::cli
