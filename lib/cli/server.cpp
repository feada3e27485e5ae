#include "cli/server.hpp"

#include <fmt/format.h>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "redis/embedded.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"
#include "util/names.hpp"

namespace workq::cli {
namespace {

std::string env(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

std::string first_of(const ConfigValue* value) {
    return value && !value->items.empty() ? value->items.front() : "";
}

std::string read_password_file(const std::string& file) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec))
        throw UsageError(fmt::format("cannot read password file {}: it is a directory", file));
    std::ifstream in(file);
    if (!in)
        throw UsageError(
            fmt::format("cannot read password file {}: {}", file, std::strerror(errno)));
    std::stringstream text;
    text << in.rdbuf();
    std::string password = text.str();
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
        password.pop_back();
    if (password.empty()) throw UsageError(fmt::format("password file {} is empty", file));
    return password;
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

    // The embedded server is private to the user (a 0700 socket directory) and has no password:
    // a password meant for some configured server must not make it refuse us.
    if (settings.embedded) settings.endpoint.password.clear();

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
        if (server.started_now)
            log::info(
                fmt::format("started the embedded redis-server (socket {}, data in {}); "
                            "see workq(7), THE EMBEDDED DEFAULT",
                            server.socket_path.string(), server.state_dir.string()));
    }
    return redis::Connection::open(settings.endpoint, timeouts);
}

}  // namespace workq::cli
