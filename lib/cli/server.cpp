#include "cli/server.hpp"

#include <unistd.h>

#include <fmt/format.h>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "redis/embedded.hpp"
#include "redis/tls.hpp"
#include "util/errors.hpp"
#include "util/hardening.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/read_file.hpp"

namespace workq::cli {
namespace {

std::string env(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

std::string first_of(const ConfigValue* value) {
    return value && !value->items.empty() ? value->items.front() : "";
}

// No password is this long; a file that never ends (--password-file /dev/zero) stops here.
constexpr std::size_t largest_password_file = 64 * 1024;

std::string read_password_file(const std::string& file) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec))
        throw UsageError(fmt::format("cannot read password file {}: it is a directory", file));
    auto read = read_bounded(file, largest_password_file);
    if (read.status == BoundedRead::Status::too_large)
        throw UsageError(fmt::format("cannot read password file {}: it is over {} bytes", file,
                                     largest_password_file));
    if (read.status != BoundedRead::Status::ok)
        throw UsageError(
            fmt::format("cannot read password file {}: {}", file, std::strerror(read.error)));
    std::string password = std::move(read.text);
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
        password.pop_back();
    if (password.empty()) throw UsageError(fmt::format("password file {} is empty", file));
    return password;
}

// One TLS setting (CONTRACT.md section 10) with the contract's precedence: the flag, WORKQ_*,
// the tool's table, [redis]. `source` names where it came from, for messages.
struct Setting {
    std::string value;
    std::string source;
};

Setting tls_setting(const std::string& flag_value, const Config& config, const std::string& tool,
                    std::string_view name) {
    auto flag = fmt::format("--tls-{}", name);
    if (!flag_value.empty()) return {flag_value, flag};
    auto env_name = fmt::format("WORKQ_TLS_{}", name);
    for (auto& c : env_name)
        c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (auto value = env(env_name.c_str()); !value.empty()) return {value, env_name};
    if (const auto* value = config.find(tool, flag.substr(2)); value && !value->items.empty())
        return {value->items.front(), value->origin};
    auto key = fmt::format("tls_{}", name);
    for (auto& c : key)
        if (c == '-') c = '_';
    if (const auto* value = config.find("redis", key); value && !value->items.empty())
        return {value->items.front(), value->origin};
    return {};
}

enum class Directory { allowed, refused };

// A file a TLS setting names must be there and readable: say which setting named it.
void check_file(const Setting& setting, Directory directory) {
    if (setting.value.empty()) return;
    std::error_code ec;
    bool directory_allowed = directory == Directory::allowed;  // a c_rehash'd CA directory
    if (!std::filesystem::exists(setting.value, ec))
        throw UsageError(fmt::format("{}: {} does not exist", setting.source, setting.value));
    if (std::filesystem::is_directory(setting.value, ec) && !directory_allowed)
        throw UsageError(fmt::format("{}: {} is a directory", setting.source, setting.value));
    if (::access(setting.value.c_str(), R_OK) != 0)
        throw UsageError(fmt::format("{}: cannot read {}: {}", setting.source, setting.value,
                                     std::strerror(errno)));
}

void resolve_tls(ServerSettings& settings, const CommonOptions& options, const Config& config,
                 const std::string& tool) {
    auto ca = tls_setting(options.tls_ca_cert, config, tool, "ca-cert");
    auto cert = tls_setting(options.tls_cert, config, tool, "cert");
    auto key = tls_setting(options.tls_key, config, tool, "key");
    auto name = tls_setting(options.tls_server_name, config, tool, "server-name");
    auto& tls = settings.endpoint.tls;
    if (!tls.enabled) {
        for (const auto* given : {&ca, &cert, &key, &name})
            if (!given->value.empty())
                throw UsageError(fmt::format(
                    "{} is for TLS, and the server is not a rediss:// (or rediss+sentinel://) URL "
                    "({}{})",
                    given->source,
                    settings.embedded ? "the embedded one" : redis::describe(settings.endpoint),
                    settings.embedded ? "" : ", from " + settings.source));
        return;
    }
    if (cert.value.empty() != key.value.empty())
        throw UsageError(fmt::format("{} needs {} too: a client certificate goes with its key",
                                     cert.value.empty() ? key.source : cert.source,
                                     cert.value.empty() ? "--tls-cert (or WORKQ_TLS_CERT)"
                                                        : "--tls-key (or WORKQ_TLS_KEY)"));
    check_file(ca, Directory::allowed);
    check_file(cert, Directory::refused);
    check_file(key, Directory::refused);
    tls.ca_cert = ca.value;
    tls.cert = cert.value;
    tls.key = key.value;
    tls.server_name = name.value;
    // The files' contents too, now: a usage error (exit 2) rather than a failure to connect.
    redis::check_tls_settings(tls);
}

}  // namespace

ServerSettings resolve_server(const CommonOptions& options, const Config& config,
                              const std::string& tool) {
    ServerSettings settings;

    std::string url;
    if (!options.redis_url.empty()) {
        url = options.redis_url;
        settings.source = "--redis";
        if (redis::url_has_password(url))
            log::warn(
                "a password in --redis is visible to other users in the process list; "
                "prefer --password-file or WORKQ_REDIS_PASSWORD");
    } else if (url = env("WORKQ_REDIS_URL"); !url.empty()) {
        settings.source = "WORKQ_REDIS_URL";
    } else if (url = first_of(config.find(tool, "redis")); !url.empty()) {
        settings.source = config.find(tool, "redis")->origin;
    } else if (url = first_of(config.find("redis", "url")); !url.empty()) {
        settings.source = config.find("redis", "url")->origin;
    } else if (url = env("REDIS_URL"); !url.empty()) {
        settings.source = "REDIS_URL";
    }

    if (url.empty()) {
        settings.embedded = true;
        settings.source = "embedded";
        settings.endpoint.kind = redis::Endpoint::Kind::unix_socket;
    } else {
        try {
            settings.endpoint = redis::parse_url(url);
        } catch (const UsageError& error) {
            // Say where the URL came from: a stray REDIS_URL set for another program, say.
            throw UsageError(fmt::format("{}: {}", settings.source, error.what()));
        }
    }

    // Password precedence: --password-file, WORKQ_REDIS_PASSWORD, the config's file, the URL.
    if (!options.password_file.empty()) {
        settings.endpoint.password = read_password_file(options.password_file);
    } else if (auto password = env("WORKQ_REDIS_PASSWORD"); !password.empty()) {
        settings.endpoint.password = password;
    } else {
        auto file = first_of(config.find(tool, "password-file"));
        if (file.empty()) file = first_of(config.find("redis", "password_file"));
        if (!file.empty()) settings.endpoint.password = read_password_file(file);
    }

    // The sentinels' own password (CONTRACT.md section 10): the URL's is the master's.
    if (settings.endpoint.sentinel) {
        if (auto password = env("WORKQ_SENTINEL_PASSWORD"); !password.empty())
            settings.endpoint.sentinel->password = password;
        else if (auto file = first_of(config.find("redis", "sentinel_password_file"));
                 !file.empty())
            settings.endpoint.sentinel->password = read_password_file(file);
    }

    // Read once: the password leaves this process's environment (/proc/<pid>/environ is what a
    // handler, or a core file, would read). A URL holding one goes too; REDIS_URL without one
    // may be meant for the handlers and stays.
    erase_environment_variable("WORKQ_REDIS_PASSWORD");
    erase_environment_variable("WORKQ_SENTINEL_PASSWORD");
    for (const char* name : {"WORKQ_REDIS_URL", "REDIS_URL"})
        if (redis::url_has_password(env(name))) erase_environment_variable(name);

    // The embedded server is private to the user (a 0700 socket directory) and has no password:
    // a password meant for some configured server must not make it refuse us.
    if (settings.embedded) settings.endpoint.password.clear();

    resolve_tls(settings, options, config, tool);

    std::string ns = options.namespace_name;
    if (ns.empty()) ns = env("WORKQ_NAMESPACE");
    if (ns.empty()) ns = first_of(config.find(tool, "namespace"));
    if (ns.empty()) ns = first_of(config.find("", "namespace"));
    if (ns.empty()) ns = "workq";
    check_namespace(ns);
    settings.namespace_name = ns;
    return settings;
}

redis::Connection connect(ServerSettings& settings, redis::Timeouts timeouts) {
    if (settings.embedded) {
        auto server = redis::ensure_embedded_server();
        settings.endpoint.socket_path = server.socket_path.string();
        // Every later connection (a worker's reconnects too) checks the directory and the server.
        settings.endpoint.embedded_state = server.state_dir.string();
        if (server.started_now)
            log::info(
                fmt::format("started the embedded redis-server (socket {}, data in {}); "
                            "see workq(7), THE EMBEDDED DEFAULT",
                            server.socket_path.string(), server.state_dir.string()));
    }
    auto connection = redis::Connection::open(settings.endpoint, timeouts);
    // A server that turned out to be a cluster's node: later connections (a worker's) route.
    if (connection.endpoint().cluster) settings.endpoint.cluster = connection.endpoint().cluster;
    return connection;
}

}  // namespace workq::cli
