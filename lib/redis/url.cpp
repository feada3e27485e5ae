#include "redis/url.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include "util/errors.hpp"
#include "util/names.hpp"

namespace workq::redis {
namespace {

constexpr int max_database =
    1'000'000;  // Redis caps at `databases` (16 by default); the server says
constexpr int default_sentinel_port = 26379;  // redis-sentinel's own default

[[noreturn]] void refuse(std::string_view url, std::string_view why) {
    throw UsageError(
        fmt::format("invalid Redis URL '{}': {}", printable(mask_password(url), 200), why));
}

std::string percent_decode(std::string_view text, std::string_view url) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        unsigned value = 0;
        if (i + 2 >= text.size()) refuse(url, "truncated %-escape");
        auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
        if (ec != std::errc{} || end != text.data() + i + 3) refuse(url, "bad %-escape");
        out += static_cast<char>(value);
        i += 2;
    }
    return out;
}

int parse_number(std::string_view text, std::string_view url, std::string_view what, int min,
                 int max) {
    int value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min ||
        value > max)
        refuse(url, fmt::format("{} '{}' is not a number from {} to {}", what, printable(text), min,
                                max));
    return value;
}

// host[:port] or [v6-address][:port], as a URL writes it.
HostPort parse_host_port(std::string_view text, std::string_view url, int default_port) {
    HostPort address{"", default_port};
    if (!text.empty() && text.front() == '[') {  // [::1]:6379
        auto close = text.find(']');
        if (close == std::string_view::npos) refuse(url, "unclosed '[' in the host");
        address.host = std::string(text.substr(1, close - 1));
        text = text.substr(close + 1);
        if (!text.empty()) {
            if (text.front() != ':') refuse(url, "expected ':' after ']'");
            address.port = parse_number(text.substr(1), url, "port", 1, 65535);
        }
    } else {
        auto colon = text.find(':');
        address.host = std::string(text.substr(0, colon));
        if (colon != std::string_view::npos)
            address.port = parse_number(text.substr(colon + 1), url, "port", 1, 65535);
    }
    if (address.host.empty()) refuse(url, "the host is missing");
    return address;
}

// Where the passwords sit in `url` (offset and length of each), found the way parse_url reads
// them: in a redis:// URL, between the first ':' of the userinfo and the last '@' (a password
// may hold an unescaped '@' or '/'); in a unix:// URL, the value of every `password` parameter
// (parse_url keeps the last one; all are hidden).
std::vector<std::pair<std::size_t, std::size_t>> password_spans(std::string_view url) {
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return spans;
    auto rest_start = scheme_end + 3;
    if (url.substr(0, scheme_end) == "unix") {
        auto query = url.find('?', rest_start);
        if (query == std::string_view::npos) return spans;
        for (auto start = query + 1; start <= url.size();) {
            auto end = std::min(url.find('&', start), url.size());
            constexpr std::string_view key = "password=";
            if (url.substr(start, end - start).starts_with(key))
                spans.emplace_back(start + key.size(), end - start - key.size());
            start = end + 1;
        }
        return spans;
    }
    auto at = url.rfind('@');
    if (at == std::string_view::npos || at < rest_start) return spans;
    auto colon = url.find(':', rest_start);
    if (colon == std::string_view::npos || colon > at) return spans;
    spans.emplace_back(colon + 1, at - colon - 1);
    return spans;
}

// Writes a decoded field back so that parse_url decodes it to the same bytes: '%', the
// characters that end the field (':' and '@' in a user name, '?' and '&' in a socket path),
// spaces and control bytes become %-escapes. Messages name the server through describe(), so
// no control byte reaches a terminal.
std::string percent_encode(std::string_view text, std::string_view reserved) {
    std::string out;
    for (unsigned char c : text) {
        if (c <= 0x20 || c == 0x7f || c == '%' ||
            reserved.find(static_cast<char>(c)) != reserved.npos)
            out += fmt::format("%{:02X}", c);
        else
            out += static_cast<char>(c);
    }
    return out;
}

}  // namespace

std::string host_port(std::string_view host, int port) {
    // Brackets when the host holds a ':' (IPv6) or starts with '[', as parse_url reads them.
    bool ipv6 = host.find(':') != std::string_view::npos || host.starts_with('[');
    return fmt::format("{}{}{}:{}", ipv6 ? "[" : "", host, ipv6 ? "]" : "", port);
}

std::string mask_password(std::string_view url) {
    std::string out;
    std::size_t from = 0;
    for (auto [start, length] : password_spans(url)) {
        out.append(url.substr(from, start - from)).append("***");
        from = start + length;
    }
    return out.append(url.substr(from));
}

void blank_password(char* url, std::size_t length) {
    for (auto [start, size] : password_spans(std::string_view(url, length)))
        std::fill_n(url + start, size, '*');
}

bool url_has_password(std::string_view url) {
    auto spans = password_spans(url);
    return std::any_of(spans.begin(), spans.end(), [](auto span) { return span.second > 0; });
}

Endpoint parse_url(std::string_view url) {
    Endpoint endpoint;
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos)
        refuse(url,
               "expected redis://host[:port][/db], rediss://host[:port][/db], "
               "redis://host:port,host:port (a cluster), "
               "redis+sentinel://host[:port]/MASTER[/db] or unix:///path/to.sock[?db=N]");
    auto scheme = url.substr(0, scheme_end);
    auto rest = url.substr(scheme_end + 3);
    // Control bytes belong %-escaped; raw, they would reach terminals in every message that
    // names the server.
    if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
        refuse(url, "it holds a control character (write it %-escaped)");

    if (scheme == "unix") {
        endpoint.kind = Endpoint::Kind::unix_socket;
        auto query = rest.find('?');
        auto path = rest.substr(0, query);
        if (path.empty() || path.front() != '/')
            refuse(url, "a unix:// URL needs an absolute socket path (unix:///path/to.sock)");
        endpoint.socket_path = percent_decode(path, url);
        if (query != std::string_view::npos) {
            auto params = rest.substr(query + 1);
            while (!params.empty()) {
                auto amp = params.find('&');
                auto param = params.substr(0, amp);
                auto eq = param.find('=');
                auto key = param.substr(0, eq);
                auto value =
                    eq == std::string_view::npos ? std::string_view{} : param.substr(eq + 1);
                if (key == "db")
                    endpoint.database = parse_number(value, url, "database", 0, max_database);
                else if (key == "password")
                    endpoint.password = percent_decode(value, url);
                else
                    refuse(url, fmt::format("unknown parameter '{}'", printable(key)));
                params =
                    amp == std::string_view::npos ? std::string_view{} : params.substr(amp + 1);
            }
        }
        return endpoint;
    }

    bool sentinel = scheme == "redis+sentinel" || scheme == "rediss+sentinel";
    if (scheme != "redis" && scheme != "rediss" && !sentinel)
        refuse(url, fmt::format("unknown scheme '{}' (use redis://, rediss://, redis+sentinel://, "
                                "rediss+sentinel:// or unix://)",
                                printable(scheme)));
    // rediss+sentinel://: TLS to the sentinels and to the master alike.
    endpoint.tls.enabled = scheme == "rediss" || scheme == "rediss+sentinel";

    auto at = rest.rfind('@');
    if (at != std::string_view::npos) {
        auto userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        auto colon = userinfo.find(':');
        endpoint.username = percent_decode(userinfo.substr(0, colon), url);
        if (colon != std::string_view::npos)
            endpoint.password = percent_decode(userinfo.substr(colon + 1), url);
    }
    auto slash = rest.find('/');
    auto hostport = rest.substr(0, slash);
    auto path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);

    if (sentinel) {
        SentinelSettings settings;
        for (std::size_t start = 0; start <= hostport.size();) {
            auto comma = std::min(hostport.find(',', start), hostport.size());
            auto item = hostport.substr(start, comma - start);
            if (item.empty())
                refuse(url, hostport.empty() ? "no sentinel is named (host[:port] before /MASTER)"
                                             : "an empty entry in the list of sentinels");
            settings.sentinels.push_back(parse_host_port(item, url, default_sentinel_port));
            start = comma + 1;
        }
        // /MASTER[/db]
        auto name_end = path.find('/');
        settings.master_name = percent_decode(path.substr(0, name_end), url);
        if (settings.master_name.empty())
            refuse(url, "the master's name is missing (redis+sentinel://host[:port]/MASTER[/db])");
        if (name_end != std::string_view::npos) {
            auto db = path.substr(name_end + 1);
            if (db.find('/') != std::string_view::npos)
                refuse(url, "expected /MASTER[/db] after the sentinels");
            if (!db.empty()) endpoint.database = parse_number(db, url, "database", 0, max_database);
        }
        // The master's address comes from the sentinels.
        endpoint.host.clear();
        endpoint.port = 0;
        endpoint.sentinel = std::move(settings);
        return endpoint;
    }

    if (!path.empty()) endpoint.database = parse_number(path, url, "database", 0, max_database);
    if (hostport.find(',') != std::string_view::npos) {
        // Several hosts: a Redis Cluster's seeds (Sentinel is redis+sentinel://).
        ClusterSettings settings;
        for (std::size_t start = 0; start <= hostport.size();) {
            auto comma = std::min(hostport.find(',', start), hostport.size());
            auto item = hostport.substr(start, comma - start);
            if (item.empty()) refuse(url, "an empty entry in the list of cluster nodes");
            settings.seeds.push_back(parse_host_port(item, url, endpoint.port));
            start = comma + 1;
        }
        if (endpoint.database != 0)
            refuse(url, "a Redis Cluster has only database 0 (drop the /db)");
        endpoint.host = settings.seeds.front().host;
        endpoint.port = settings.seeds.front().port;
        endpoint.cluster = std::move(settings);
        return endpoint;
    }
    auto address = parse_host_port(hostport, url, endpoint.port);
    endpoint.host = std::move(address.host);
    endpoint.port = address.port;
    return endpoint;
}

std::string describe(const Endpoint& endpoint) {
    std::string user =
        endpoint.username.empty() ? "" : percent_encode(endpoint.username, ":@/") + "@";
    if (endpoint.kind == Endpoint::Kind::unix_socket) {
        auto path = percent_encode(endpoint.socket_path, "?&");
        return endpoint.database == 0 ? fmt::format("unix://{}", path)
                                      : fmt::format("unix://{}?db={}", path, endpoint.database);
    }
    const char* scheme = endpoint.tls.enabled ? "rediss" : "redis";
    if (endpoint.sentinel) {
        if (!endpoint.host.empty())
            return fmt::format("master {} at {}://{}{}/{}",
                               percent_encode(endpoint.sentinel->master_name, "/@,"), scheme, user,
                               host_port(endpoint.host, endpoint.port), endpoint.database);
        std::string sentinels;
        for (const auto& sentinel : endpoint.sentinel->sentinels)
            sentinels += (sentinels.empty() ? "" : ",") + host_port(sentinel.host, sentinel.port);
        return fmt::format("{}+sentinel://{}{}/{}/{}", scheme, user, sentinels,
                           percent_encode(endpoint.sentinel->master_name, "/@,"),
                           endpoint.database);
    }
    if (endpoint.cluster && endpoint.cluster->seeds.size() > 1) {
        std::string seeds;
        for (const auto& seed : endpoint.cluster->seeds)
            seeds += (seeds.empty() ? "" : ",") + host_port(seed.host, seed.port);
        return fmt::format("{}://{}{}/0", scheme, user, seeds);
    }
    return fmt::format("{}://{}{}/{}", scheme, user, host_port(endpoint.host, endpoint.port),
                       endpoint.database);
}

}  // namespace workq::redis
