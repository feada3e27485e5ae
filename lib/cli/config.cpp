#include "cli/config.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>
#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "util/errors.hpp"
#include "util/read_file.hpp"

extern char** environ;

namespace workq::cli {
namespace fs = std::filesystem;
namespace {

// Far above any real config file; a file that never ends (--config /dev/zero) stops here
// instead of filling memory.
constexpr std::size_t largest_config_file = 1 << 20;

const std::vector<std::string> tool_tables = {"enqueue", "work", "queue", "dlq", "status"};

std::string origin_of(const fs::path& file, const toml::node& node) {
    return fmt::format("{}:{}", file.string(), node.source().begin.line);
}

std::optional<std::string> scalar_text(const toml::node& node) {
    if (auto value = node.value_exact<std::string>()) return *value;
    if (auto value = node.value_exact<int64_t>()) return std::to_string(*value);
    if (auto value = node.value_exact<double>()) return fmt::format("{}", *value);
    if (auto value = node.value_exact<bool>()) return *value ? "true" : "false";
    return std::nullopt;
}

ConfigValue to_value(const fs::path& file, const std::string& where, const toml::node& node) {
    ConfigValue value;
    value.origin = origin_of(file, node);
    if (const auto* array = node.as_array()) {
        for (const auto& element : *array) {
            auto text = scalar_text(element);
            if (!text)
                throw UsageError(
                    fmt::format("{}: {}: arrays may hold only strings, numbers and booleans",
                                value.origin, where));
            value.items.push_back(*text);
        }
    } else if (auto text = scalar_text(node)) {
        value.items.push_back(*text);
    } else {
        throw UsageError(fmt::format("{}: {}: expected a string, number, boolean or array",
                                     value.origin, where));
    }
    return value;
}

void merge_file(Config& config, const fs::path& file) {
    // A directory opens and reads as empty: refuse it rather than read no settings silently.
    // Pipes stay welcome (--config <(generate-config)).
    std::error_code ec;
    if (fs::is_directory(file, ec))
        throw UsageError(
            fmt::format("cannot read config file {}: it is a directory", file.string()));
    auto read = read_bounded(file.string(), largest_config_file);
    if (read.status == BoundedRead::Status::too_large)
        throw UsageError(fmt::format("cannot read config file {}: it is over {} bytes",
                                     file.string(), largest_config_file));
    if (read.status != BoundedRead::Status::ok)
        throw UsageError(fmt::format("cannot read config file {}: {}", file.string(),
                                     std::strerror(read.error)));
    merge_config_text(config, read.text, file);
}

}  // namespace

void merge_config_text(Config& config, std::string_view text, const fs::path& file) {
    toml::table root;
    try {
        root = toml::parse(text, file.string());
    } catch (const toml::parse_error& error) {
        throw UsageError(fmt::format("malformed config file {} line {}: {}", file.string(),
                                     error.source().begin.line, error.description()));
    }
    for (const auto& [key, node] : root) {
        std::string name(key.str());
        if (const auto* table = node.as_table()) {
            config.table_origins[name] = origin_of(file, *table);
            for (const auto& [inner_key, inner] : *table) {
                std::string inner_name(inner_key.str());
                config.tables[name][inner_name] =
                    to_value(file, fmt::format("[{}] {}", name, inner_name), inner);
            }
        } else {
            config.tables[""][name] = to_value(file, name, node);
        }
    }
    config.files.push_back(file);
}

const ConfigValue* Config::find(const std::string& table, const std::string& key) const {
    auto t = tables.find(table);
    if (t == tables.end()) return nullptr;
    auto k = t->second.find(key);
    return k == t->second.end() ? nullptr : &k->second;
}

std::vector<fs::path> config_files(const std::optional<std::string>& explicit_file) {
    if (explicit_file) return {fs::path(*explicit_file)};
    std::vector<fs::path> files{"/etc/workq/config.toml"};
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
        files.push_back(fs::path(xdg) / "workq" / "config.toml");
    else if (const char* home = std::getenv("HOME"); home && *home)
        files.push_back(fs::path(home) / ".config" / "workq" / "config.toml");
    return files;
}

Config load_config(const std::optional<std::string>& explicit_file) {
    Config config;
    for (const auto& file : config_files(explicit_file)) {
        std::error_code ec;
        if (!explicit_file && !fs::exists(file, ec)) continue;
        if (explicit_file && !fs::exists(file, ec))
            throw UsageError(fmt::format("config file {} does not exist", file.string()));
        merge_file(config, file);
    }
    return config;
}

std::string environment_variable(std::string_view tool, std::string_view key) {
    std::string name = "WORKQ_";
    for (std::string_view part : {tool, std::string_view("_"), key})
        for (char c : part)
            name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return name;
}

std::map<std::string, std::string> apply_environment(
    CLI::App& app, const std::string& tool, const std::function<void(const std::string&)>& warn) {
    std::map<std::string, std::string> applied;
    std::map<std::string, CLI::Option*> by_variable;
    for (CLI::Option* option : app.get_options()) {
        for (const auto& name : option->get_lnames()) {
            if (name == "help" || name == "version") continue;
            by_variable[environment_variable(tool, name)] = option;
        }
    }
    const std::string prefix = environment_variable(tool, "");
    for (char** entry = environ; entry && *entry; ++entry) {
        std::string_view text = *entry;
        auto equals = text.find('=');
        if (equals == std::string_view::npos || !text.starts_with(prefix)) continue;
        std::string variable(text.substr(0, equals));
        std::string value(text.substr(equals + 1));
        if (value.empty()) continue;  // set but empty: unset, as for WORKQ_CONFIG
        auto found = by_variable.find(variable);
        if (found == by_variable.end()) {
            warn(
                fmt::format("unknown variable {} in the environment (no option of workq-{} is "
                            "named so)",
                            variable, tool));
            continue;
        }
        CLI::Option* option = found->second;
        auto key = option->get_lnames().front();
        if (is_connection_key(key)) {
            warn(fmt::format(
                "{} is not read: the connection settings have variables of their "
                "own (WORKQ_REDIS_URL, WORKQ_REDIS_PASSWORD, WORKQ_NAMESPACE, WORKQ_TLS_*, "
                "WORKQ_CONFIG)",
                variable));
            continue;
        }
        if (option->count() > 0) continue;  // the command line wins
        try {
            if (option->get_expected_min() == 0) {  // a flag
                if (value == "false" || value == "0") continue;
                if (value != "true" && value != "1")
                    throw UsageError(fmt::format("{}: must be true or false (or 1 or 0), not '{}'",
                                                 variable, value));
                option->add_result(std::string("true"));
            } else {
                option->add_result(value);
            }
            option->run_callback();
        } catch (const CLI::Error& error) {
            throw UsageError(fmt::format("{}: {}", variable, error.what()));
        }
        applied[key] = variable;
    }
    return applied;
}

bool is_connection_key(std::string_view key) {
    return key == "redis" || key == "password-file" || key == "namespace" || key == "config" ||
           key == "tls-ca-cert" || key == "tls-cert" || key == "tls-key" ||
           key == "tls-server-name";
}

void apply_config(CLI::App& app, const Config& config, const std::string& tool,
                  const std::function<void(const std::string&)>& warn) {
    // Top level and [redis]: only the documented keys; other tools' tables are theirs to check.
    for (const auto& [table, keys] : config.tables) {
        for (const auto& [key, value] : keys) {
            if (table.empty() && key != "namespace")
                warn(fmt::format("unknown key '{}' at the top level of {}", key, value.origin));
            else if (table == "redis" && key != "url" && key != "password_file" &&
                     key != "sentinel_password_file" && key != "tls_ca_cert" && key != "tls_cert" &&
                     key != "tls_key" && key != "tls_server_name")
                warn(fmt::format("unknown key '{}' in [redis] ({})", key, value.origin));
        }
        if (!table.empty() && table != "redis" &&
            std::find(tool_tables.begin(), tool_tables.end(), table) == tool_tables.end()) {
            // The table's own line: its first key's (the line after it, or further) would send
            // the reader to a line that is not the mistake.
            auto origin = config.table_origins.find(table);
            warn(fmt::format("unknown table [{}] in {}", table,
                             origin != config.table_origins.end() ? origin->second
                             : keys.empty()                       ? std::string("the config file")
                                                                  : keys.begin()->second.origin));
        }
    }
    auto own = config.tables.find(tool);
    if (own == config.tables.end()) return;
    for (const auto& [key, value] : own->second) {
        if (is_connection_key(key)) continue;
        CLI::Option* option = app.get_option_no_throw("--" + key);
        if (option == nullptr || key == "help" || key == "version") {
            warn(fmt::format("unknown key '{}' in [{}] ({})", key, tool, value.origin));
            continue;
        }
        if (option->count() > 0) continue;  // the command line wins
        try {
            if (option->get_expected_min() == 0) {  // a flag
                // One value: `burst = [true, false]` is a mistake, not the first item.
                const auto text = value.items.size() == 1
                                      ? value.items.front()
                                      : fmt::format("[{}]", fmt::join(value.items, ", "));
                if (text == "false") continue;
                if (text != "true")
                    throw UsageError(fmt::format("{}: [{}] {} must be true or false, not '{}'",
                                                 value.origin, tool, key, text));
                option->add_result(std::string("true"));
            } else if (option->get_items_expected_max() == 1 && value.items.size() > 1) {
                // A flag that takes one comma-separated list: `[100, 101]` is `"100,101"`.
                option->add_result(fmt::format("{}", fmt::join(value.items, ",")));
            } else {
                for (const auto& item : value.items)
                    option->add_result(item);
            }
            option->run_callback();
        } catch (const CLI::Error& error) {
            throw UsageError(fmt::format("{}: [{}] {}: {}", value.origin, tool, key, error.what()));
        }
    }
}

}  // namespace workq::cli
