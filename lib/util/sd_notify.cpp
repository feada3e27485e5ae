#include "util/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "util/fd.hpp"

namespace workq {

namespace {

std::optional<long long> env_number(const char* name) {
    const char* text = std::getenv(name);
    if (!text || !*text) return std::nullopt;
    long long value = 0;
    auto end = text + std::strlen(text);
    auto [ptr, ec] = std::from_chars(text, end, value);
    if (ec != std::errc() || ptr != end || value <= 0) return std::nullopt;
    return value;
}

}  // namespace

bool sd_notify(std::string_view message) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@')) return false;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::size_t length = std::strlen(path);
    if (length >= sizeof address.sun_path) return false;
    std::memcpy(address.sun_path, path, length);
    if (path[0] == '@') address.sun_path[0] = '\0';  // abstract namespace: no trailing NUL
    auto address_size =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length + (path[0] == '@' ? 0 : 1));

    // A fresh socket per message: messages are rare (state changes, a watchdog ping every few
    // seconds), and nothing stays open for a handler to inherit.
    UniqueFd socket_fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!socket_fd.valid()) return false;
    ssize_t sent = ::sendto(socket_fd.get(), message.data(), message.size(), MSG_NOSIGNAL,
                            reinterpret_cast<const sockaddr*>(&address), address_size);
    return sent == static_cast<ssize_t>(message.size());
}

std::optional<Millis> sd_watchdog_interval() {
    auto usec = env_number("WATCHDOG_USEC");
    if (!usec) return std::nullopt;
    if (auto pid = env_number("WATCHDOG_PID"); pid && *pid != ::getpid()) return std::nullopt;
    // Half the timeout, as sd_watchdog_enabled(3) advises; at least 1 ms.
    return std::max(Millis(1), Millis(*usec / 2000));
}

std::string sd_status_line(std::string_view text) {
    std::string line(text);
    for (char& c : line)
        if (c == '\n' || c == '\r') c = ' ';
    return line;
}

}  // namespace workq
