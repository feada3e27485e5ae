#include "cli/options.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "redis/url.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"

namespace workq::cli {

CLI::Validator not_empty() {
    return CLI::Validator(
        [](std::string& text) -> std::string { return text.empty() ? "must not be empty" : ""; },
        "");
}

void add_common_options(CLI::App& app, CommonOptions& options) {
    app.set_version_flag("--version", std::string("workq ") + WORKQ_VERSION,
                         "Print the version and exit");
    auto* group = "Connection and output";
    app.add_option(
           "--redis", options.redis_url,
           "Redis server URL: redis://[user[:password]@]host[:port][/db], rediss://... (TLS), "
           "redis+sentinel://host[:port][,host[:port]...]/MASTER[/db] or unix:///path?db=N "
           "(env WORKQ_REDIS_URL, then config, then REDIS_URL; default: the embedded server)")
        ->check(not_empty())
        ->group(group);
    app.add_option("--password-file", options.password_file,
                   "Read the Redis password from this file (env WORKQ_REDIS_PASSWORD)")
        ->check(not_empty())
        ->group(group);
    app.add_option("--tls-ca-cert", options.tls_ca_cert,
                   "rediss://: trust the CA certificates in this PEM file (env WORKQ_TLS_CA_CERT; "
                   "default: the system's store)")
        ->check(not_empty())
        ->group(group);
    app.add_option("--tls-cert", options.tls_cert,
                   "rediss://: present this client certificate (PEM; env WORKQ_TLS_CERT)")
        ->check(not_empty())
        ->group(group);
    app.add_option("--tls-key", options.tls_key,
                   "rediss://: the client certificate's key (PEM, unencrypted; env WORKQ_TLS_KEY)")
        ->check(not_empty())
        ->group(group);
    app.add_option("--tls-server-name", options.tls_server_name,
                   "rediss://: the name to verify the server's certificate for and send as SNI "
                   "(env WORKQ_TLS_SERVER_NAME; default: the URL's host)")
        ->check(not_empty())
        ->group(group);
    app.add_option("--namespace", options.namespace_name,
                   "Key prefix of all of workq's keys (env WORKQ_NAMESPACE; default workq)")
        ->check(not_empty())
        ->group(group);
    app.add_option("--config", options.config_file,
                   "Read only this config file (env WORKQ_CONFIG; default /etc/workq/config.toml "
                   "and $XDG_CONFIG_HOME/workq/config.toml)")
        ->check(not_empty())
        ->group(group);
    app.add_flag("-q,--quiet", options.quiet, "Print errors only on stderr")->group(group);
    app.add_option("--log-level", options.log_level, "debug, info, warn or error (default info)")
        ->check(not_empty())
        ->group(group);
    app.add_option("--log-format", options.log_format, "human or json (default human)")
        ->check(not_empty())
        ->group(group);
}

void describe_tool(CLI::App& app, const std::string& footer) {
    app.footer(footer);
    app.get_formatter()->column_width(30);
    app.get_formatter()->label("OPTIONS", "OPTIONS");
}

namespace {

// A password in --redis is visible in /proc/<pid>/cmdline to every user of the machine for as
// long as the tool runs (a worker: for weeks). CLI11 has copied the arguments by now, so the
// bytes in argv can be blanked; only the moment from exec to here remains, which is why the
// tools still warn about it. Arguments after "--" (payloads, COMMAND) are never touched.
void blank_passwords_in_argv(int argc, char** argv) {
    constexpr std::string_view flag = "--redis", flag_with_value = "--redis=";
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--") break;
        char* url = nullptr;
        if (arg == flag && i + 1 < argc)
            url = argv[++i];
        else if (arg.starts_with(flag_with_value))
            url = argv[i] + flag_with_value.size();
        if (url) redis::blank_password(url, std::strlen(url));
    }
}

}  // namespace

void parse_command_line(CLI::App& app, int argc, char** argv) {
    // The options every tool has may come after a subcommand too (`workq-dlq count q -q`):
    // what a subcommand does not know falls through to the tool.
    for (auto* subcommand : app.get_subcommands([](CLI::App*) { return true; }))
        subcommand->fallthrough();
    try {
        app.parse(argc, argv);
        blank_passwords_in_argv(argc, argv);
    } catch (const CLI::CallForHelp&) {
        throw HelpRequested{app.help()};
    } catch (const CLI::CallForAllHelp&) {
        throw HelpRequested{app.help("", CLI::AppFormatMode::All)};
    } catch (const CLI::CallForVersion& version) {
        throw HelpRequested{std::string(version.what()) + "\n"};
    } catch (const CLI::ParseError& error) {
        throw UsageError(fmt::format("{} (see {} --help)", error.what(), log::program()));
    }
}

std::optional<std::string> explicit_config_file(const CommonOptions& options) {
    if (!options.config_file.empty()) return options.config_file;
    if (const char* env = std::getenv("WORKQ_CONFIG"); env && *env) return std::string(env);
    return std::nullopt;
}

Config finish_options(CLI::App& app, CommonOptions& options, const std::string& tool) {
    // Logging first, from the command line alone, so that config warnings honour --quiet.
    auto setup_logging = [&] {
        log::Level level = log::Level::info;
        if (!log::parse_level(options.log_level, level))
            throw UsageError(
                fmt::format("--log-level: unknown level '{}' (use debug, info, warn or error)",
                            options.log_level));
        if (options.quiet) level = log::Level::error;
        log::Format format = log::Format::human;
        if (options.log_format == "json")
            format = log::Format::json;
        else if (options.log_format != "human")
            throw UsageError(fmt::format("--log-format: unknown format '{}' (use human or json)",
                                         options.log_format));
        log::configure(log::program(), level, format);
    };
    setup_logging();
    Config config = load_config(explicit_config_file(options));
    std::vector<std::string> warnings;
    apply_config(app, config, tool,
                 [&](const std::string& warning) { warnings.push_back(warning); });
    setup_logging();  // the file may have set log-level, quiet or log-format
    for (const auto& warning : warnings)
        log::warn(warning);
    return config;
}

}  // namespace workq::cli
