// Redis URLs (lib/redis/url): redis://, rediss:// (TLS), unix://, redis+sentinel:// and
// rediss+sentinel://. parse_url either returns an endpoint or throws UsageError (never anything
// else); the message never holds the password or a control byte; an endpoint's description (used
// in every message naming the server) parses back to the same server and never holds the
// password; mask_password hides every byte of it.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "redis/url.hpp"
#include "util/errors.hpp"

namespace {

bool has_control_byte(std::string_view text) {
    for (unsigned char c : text)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

bool same_sentinels(const workq::redis::Endpoint& a, const workq::redis::Endpoint& b) {
    if (!a.sentinel || !b.sentinel) return !a.sentinel && !b.sentinel;
    return a.sentinel->sentinels == b.sentinel->sentinels &&
           a.sentinel->master_name == b.sentinel->master_name;
}

bool same_server(const workq::redis::Endpoint& a, const workq::redis::Endpoint& b) {
    return a.kind == b.kind && a.database == b.database && a.username == b.username &&
           same_sentinels(a, b) && a.tls.enabled == b.tls.enabled &&
           (a.kind == workq::redis::Endpoint::Kind::unix_socket
                ? a.socket_path == b.socket_path
                : a.host == b.host && a.port == b.port);
}

// The password as a redis:// or redis+sentinel:// URL carries it (between the first ':' of the
// userinfo and the last '@'), when it is long enough (4+ letters and digits) and occurs once, so
// that finding it elsewhere means it leaked rather than that the host or user name happens to hold
// it.
std::string_view findable_password(std::string_view url) {
    std::size_t rest = url.starts_with("redis://")             ? 8
                       : url.starts_with("rediss://")          ? 9
                       : url.starts_with("redis+sentinel://")  ? 17
                       : url.starts_with("rediss+sentinel://") ? 18
                                                               : 0;
    if (rest == 0) return {};
    auto at = url.rfind('@');
    auto colon = url.find(':', rest);
    if (at == std::string_view::npos || colon == std::string_view::npos || colon > at) return {};
    auto password = url.substr(colon + 1, at - colon - 1);
    if (password.size() < 4 || url.find(password) != url.rfind(password)) return {};
    // Letters and digits only: a password of punctuation could be spelled by the message itself.
    // And one capital G..Z at least: escapes such as \x00 next to digits cannot spell it.
    for (char c : password)
        if (!std::isalnum(static_cast<unsigned char>(c))) return {};
    if (std::none_of(password.begin(), password.end(), [](char c) { return c >= 'G' && c <= 'Z'; }))
        return {};
    return password;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view url(reinterpret_cast<const char*>(data), size);
    auto password = findable_password(url);
    auto hides_password = [&](std::string_view text) {
        return password.empty() || text.find(password) == std::string_view::npos;
    };
    FUZZ_CHECK(hides_password(workq::redis::mask_password(url)));
    workq::redis::Endpoint endpoint;
    try {
        endpoint = workq::redis::parse_url(url);
    } catch (const workq::UsageError& error) {
        FUZZ_CHECK(!has_control_byte(error.what()));
        FUZZ_CHECK(hides_password(error.what()));
        return 0;
    }
    if (!endpoint.password.empty()) FUZZ_CHECK(workq::redis::url_has_password(url));
    auto described = workq::redis::describe(endpoint);
    FUZZ_CHECK(hides_password(described));
    FUZZ_CHECK(!has_control_byte(described));
    workq::redis::Endpoint again;
    try {
        again = workq::redis::parse_url(described);
    } catch (const workq::UsageError& error) {
        std::fprintf(stderr, "describe() gave '%s', which does not parse: %s\n", described.c_str(),
                     error.what());
        FUZZ_CHECK(false);
    }
    FUZZ_CHECK(same_server(endpoint, again));
    FUZZ_CHECK(again.password.empty());
    FUZZ_CHECK(workq::redis::describe(again) == described);
    return 0;
}
