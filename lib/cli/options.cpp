#include "cli/options.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <vector>

#include "redis/url.hpp"
#include "util/errors.hpp"
#include "util/hardening.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/text.hpp"

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
           "redis+sentinel://host[:port][,host[:port]...]/MASTER[/db], "
           "redis://host:port,host:port... (Redis Cluster seeds) or unix:///path?db=N "
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

namespace {

// CLI11's help shows each option's C++ type and its relations ("--priority INT:INT",
// "--json Excludes: --prometheus"): noise to a reader. This one shows what the man pages show,
// a word for the value ("--lease DURATION"), and nothing for a flag.
class HelpFormatter : public CLI::Formatter {
  public:
    std::string make_option_opts(const CLI::Option* option) const override {
        if (!option->get_option_text().empty()) return " " + option->get_option_text();
        std::string out;
        // A flag has no type name.
        if (option->nonpositional() && !option->get_type_name().empty()) {
            auto word = value_word(*option);
            // An optional value is attached with '=' (--watch=1s).
            out = option->get_expected_min() == 0 ? " [=" + word + "]" : " " + word;
        }
        if (option->get_expected_max() == CLI::detail::expected_max_vector_size) out += " ...";
        return out;
    }

  private:
    // The man pages' word for an option's value: a word the option was given as its type name
    // (->type_name("ADDR")), a known flag's, or one from its C++ type (INT: N, a DURATION
    // validator); VALUE when nothing says more.
    static std::string value_word(const CLI::Option& option) {
        static const std::map<std::string, std::string, std::less<>> by_name{
            {"redis", "URL"},
            {"password-file", "FILE"},
            {"config", "FILE"},
            {"namespace", "NS"},
            {"log-level", "LEVEL"},
            {"log-format", "FORMAT"},
            {"backoff", "BASE[,CAP]"},
            {"error-match", "REGEX"},
            {"health-cmd", "CMD"},
            {"on-start", "CMD"},
            {"on-stop", "CMD"},
            {"name", "NAME"},
            {"worker", "NAME"},
            {"unique", "KEY"},
            {"id", "ID"},
            {"state", "STATE"},
            {"max-result", "SIZE"},
            {"watch", "INTERVAL"},
            {"at", "TIME"},
            {"serve", "ADDR"},
            {"http", "ADDR"},
            {"permanent-exit-codes", "CODE,..."},
        };
        static const std::set<std::string, std::less<>> durations{
            "timeout",         "kill-grace", "lease",       "max-runtime", "shutdown-timeout",
            "health-interval", "result-ttl", "recycle-age", "max-age",     "warn-max-age",
            "older-than",      "newer-than", "delay",       "wait-timeout"};
        const auto& names = option.get_lnames();
        if (!names.empty()) {
            if (auto it = by_name.find(names.front()); it != by_name.end()) return it->second;
            if (durations.contains(names.front())) return "DURATION";
        }
        auto type = option.get_type_name();
        auto colon = type.find(':');
        auto base = type.substr(0, colon);
        if (base == "INT" || base == "UINT" || base == "FLOAT") return "N";
        auto upper_word = [](const std::string& word) {
            return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
                return (c >= 'A' && c <= 'Z') || c == '_' || c == ',' || c == '.';
            });
        };
        if (colon != std::string::npos && upper_word(type.substr(colon + 1)))
            return type.substr(colon + 1);  // a validator's word: DURATION, TIME, SIZE
        if (colon == std::string::npos && base != "TEXT" && upper_word(base)) return base;
        return "VALUE";
    }
};

void use_formatter(CLI::App& app, const std::shared_ptr<HelpFormatter>& formatter) {
    app.formatter(formatter);
    for (auto* subcommand : app.get_subcommands([](CLI::App*) { return true; }))
        use_formatter(*subcommand, formatter);
}

}  // namespace

void describe_tool(CLI::App& app, const std::string& footer) {
    app.footer(footer);
    auto formatter = std::make_shared<HelpFormatter>();
    formatter->column_width(30);
    formatter->label("OPTIONS", "OPTIONS");
    use_formatter(app, formatter);
}

namespace {

// The subcommand a user probably meant by `word`: a common synonym, or one a typo or two away.
std::optional<std::string> suggest_subcommand(const std::string& word,
                                              const std::vector<std::string>& names) {
    static const std::map<std::string, std::string, std::less<>> synonyms{
        {"list", "ls"},       {"remove", "rm"},      {"delete", "rm"},   {"del", "rm"},
        {"retry", "requeue"}, {"unpause", "resume"}, {"info", "show"},   {"get", "show"},
        {"clear", "purge"},   {"stop", "pause"},     {"start", "resume"}};
    auto known = [&](const std::string& name) {
        return std::find(names.begin(), names.end(), name) != names.end();
    };
    if (auto it = synonyms.find(word); it != synonyms.end() && known(it->second)) return it->second;
    std::optional<std::string> best;
    std::size_t best_distance = 3;
    for (const auto& name : names) {
        auto distance = edit_distance(word, name);
        if (distance < best_distance && distance < name.size()) {
            best_distance = distance;
            best = name;
        }
    }
    return best;
}

// A tool with subcommands was given none it knows: say which word was wrong and what is right,
// instead of CLI11's "A subcommand is required".
void refuse_unknown_subcommand(CLI::App& app) {
    std::vector<std::string> names;
    for (auto* subcommand : app.get_subcommands([](CLI::App*) { return true; }))
        names.push_back(subcommand->get_name());
    auto list = fmt::format("{}", fmt::join(names, ", "));
    auto remaining = app.remaining();
    auto word = std::find_if(remaining.begin(), remaining.end(),
                             [](const std::string& arg) { return !arg.starts_with("-"); });
    if (word == remaining.end())
        throw UsageError(
            fmt::format("a subcommand is required: {} (see {} --help)", list, log::program()));
    auto suggestion = suggest_subcommand(*word, names);
    throw UsageError(fmt::format(
        "unknown subcommand '{}'{}; the subcommands are {} (see {} --help)", printable(*word),
        suggestion ? fmt::format(" (did you mean {}?)", *suggestion) : "", list, log::program()));
}

}  // namespace

void hide_passwords_in_argv(char** argv) {
    constexpr std::string_view flag = "--redis", flag_with_value = "--redis=";
    std::vector<std::string> shown;
    std::vector<char*> urls;
    // The text to show for a URL: masked when it holds a password.
    auto show_url = [&](char* url) {
        if (!redis::url_has_password(url)) return std::string(url);
        urls.push_back(url);
        return redis::mask_password(url);
    };
    bool options = true;
    for (int i = 0; argv[i]; ++i) {
        std::string_view arg = argv[i];
        if (i == 0 || !options) {
            shown.emplace_back(arg);
        } else if (arg == "--") {
            options = false;
            shown.emplace_back(arg);
        } else if (arg == flag && argv[i + 1]) {
            shown.emplace_back(arg);
            shown.push_back(show_url(argv[++i]));
        } else if (arg.starts_with(flag_with_value)) {
            shown.push_back(std::string(flag_with_value) +
                            show_url(argv[i] + flag_with_value.size()));
        } else {
            shown.emplace_back(arg);
        }
    }
    if (urls.empty()) return;
    std::string line;
    for (const auto& word : shown)
        line += (line.empty() ? "" : " ") + word;
    if (replace_command_line(argv, line)) return;
    // Not the kernel's layout (never seen): at least the password's bytes go.
    for (char* url : urls)
        redis::blank_password(url, std::strlen(url));
}

void parse_command_line(CLI::App& app, int argc, char** argv) {
    // The options every tool has may come after a subcommand too (`workq-dlq count q -q`):
    // what a subcommand does not know falls through to the tool.
    for (auto* subcommand : app.get_subcommands([](CLI::App*) { return true; }))
        subcommand->fallthrough();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        throw HelpRequested{app.help()};
    } catch (const CLI::CallForAllHelp&) {
        throw HelpRequested{app.help("", CLI::AppFormatMode::All)};
    } catch (const CLI::CallForVersion& version) {
        throw HelpRequested{std::string(version.what()) + "\n"};
    } catch (const CLI::ParseError& error) {
        if (app.get_require_subcommand_min() > 0 && app.get_subcommands().empty())
            refuse_unknown_subcommand(app);
        throw UsageError(fmt::format("{} (see {} --help)", error.what(), log::program()));
    }
}

std::optional<std::string> explicit_config_file(const CommonOptions& options) {
    if (!options.config_file.empty()) return options.config_file;
    if (const char* env = std::getenv("WORKQ_CONFIG"); env && *env) return std::string(env);
    return std::nullopt;
}

Config finish_options(CLI::App& app, CommonOptions& options, const std::string& tool,
                      std::map<std::string, std::string>* from_environment) {
    // Logging first, from the command line alone, so that config warnings honour --quiet.
    auto setup_logging = [&] {
        log::Level level = log::Level::info;
        if (!log::parse_level(options.log_level, level))
            throw UsageError(
                fmt::format("--log-level: unknown level '{}' (use debug, info, warn or error)",
                            options.log_level));
        // A handler's stderr, which workq-work relays, is the user's output: --quiet (our own
        // lines) keeps it; a level that hides warnings hides it too.
        bool relay = level <= log::Level::warn;
        if (options.quiet) level = log::Level::error;
        log::Format format = log::Format::human;
        if (options.log_format == "json")
            format = log::Format::json;
        else if (options.log_format != "human")
            throw UsageError(fmt::format("--log-format: unknown format '{}' (use human or json)",
                                         options.log_format));
        log::configure(log::program(), level, format);
        log::relay_output(relay);
    };
    setup_logging();
    std::vector<std::string> warnings;
    auto warn = [&](const std::string& warning) { warnings.push_back(warning); };
    // The environment first: it ranks above the file, which fills only what is still unset.
    auto applied = apply_environment(app, tool, warn);
    if (from_environment) *from_environment = std::move(applied);
    Config config = load_config(explicit_config_file(options));
    apply_config(app, config, tool, warn);
    setup_logging();  // the file may have set log-level, quiet or log-format
    for (const auto& warning : warnings)
        log::warn(warning);
    return config;
}

}  // namespace workq::cli
