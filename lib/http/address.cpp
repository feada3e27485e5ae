#include "http/address.hpp"

#include <fmt/format.h>
#include <boost/asio/ip/address.hpp>
#include <charconv>

#include "util/errors.hpp"
#include "util/names.hpp"

namespace workq::http {
namespace {

std::uint16_t parse_port(std::string_view text, std::string_view whole, std::string_view flag) {
    unsigned value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || value > 65535)
        throw UsageError(
            fmt::format("{}: '{}' has no valid port (0-65535): use PORT, HOST:PORT "
                        "or [IPV6]:PORT",
                        flag, printable(whole)));
    return static_cast<std::uint16_t>(value);
}

}  // namespace

ListenAddress parse_listen_address(std::string_view text, std::string_view flag) {
    ListenAddress address;
    std::string_view host, port;
    if (text.starts_with('[')) {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            throw UsageError(fmt::format("{}: '{}' is not [IPV6]:PORT", flag, printable(text)));
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else if (auto colon = text.rfind(':'); colon == std::string_view::npos) {
        address.host = "127.0.0.1";
        address.port = parse_port(text, text, flag);
        return address;
    } else {
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            throw UsageError(fmt::format("{}: '{}': write an IPv6 address in brackets, [::1]:PORT",
                                         flag, printable(text)));
    }
    address.port = parse_port(port, text, flag);
    if (host == "localhost") {
        address.host = "127.0.0.1";
        return address;
    }
    boost::system::error_code error;
    auto ip = boost::asio::ip::make_address(std::string(host), error);
    if (host.empty() || error)
        throw UsageError(
            fmt::format("{}: '{}' is not an IP address (names other than localhost "
                        "are not resolved): use PORT, IPV4:PORT or [IPV6]:PORT",
                        flag, printable(host)));
    // IPv6 zone ids ("fe80::1%eth0") are kept as make_address spells them.
    address.host = ip.to_string();
    return address;
}

std::string describe(const ListenAddress& address) {
    if (address.host.find(':') != std::string::npos)
        return fmt::format("[{}]:{}", address.host, address.port);
    return fmt::format("{}:{}", address.host, address.port);
}

}  // namespace workq::http
