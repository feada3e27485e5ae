// Where an HTTP endpoint of ours listens: `--serve ADDR`, `--http ADDR` (CONTRACT.md section 12).
// PORT alone is loopback; anything else must name an address, so that nothing is reachable from
// the network unless the user wrote so.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace workq::http {

struct ListenAddress {
    std::string host;        // an IP literal, without brackets: "127.0.0.1", "0.0.0.0", "::1"
    std::uint16_t port = 0;  // 0: a free port the kernel picks (the log line names it)
};

// Parses "PORT" (127.0.0.1:PORT), "IPV4:PORT", "[IPV6]:PORT" or "localhost:PORT" (127.0.0.1).
// Throws UsageError naming `flag` and the text when it is none of these: a host name other than
// localhost (we do not resolve names: an exporter must not listen where DNS says today), a port
// above 65535, an empty part.
ListenAddress parse_listen_address(std::string_view text, std::string_view flag);

// "127.0.0.1:9000", "[::1]:9000": the form parse_listen_address reads back, for log lines.
std::string describe(const ListenAddress& address);

}  // namespace workq::http
