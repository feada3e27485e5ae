// notify_listener SOCKET: plays systemd's side of sd_notify(3) for tests. Binds a Unix datagram
// socket at SOCKET (a path, or @name in the abstract namespace) and writes every datagram it
// receives to stdout followed by a newline, flushed at once, until it is killed. A plain C++
// program because a fresh Debian 12 has neither socat nor python3.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: notify_listener SOCKET\n");
        return 2;
    }
    const char* path = argv[1];
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::size_t length = std::strlen(path);
    if (length == 0 || length >= sizeof address.sun_path) {
        std::fprintf(stderr, "notify_listener: bad socket path\n");
        return 2;
    }
    std::memcpy(address.sun_path, path, length);
    bool abstract = path[0] == '@';
    if (abstract) address.sun_path[0] = '\0';
    auto size =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length + (abstract ? 0 : 1));
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&address), size) != 0) {
        std::perror("notify_listener: bind");
        return 1;
    }
    static char buffer[65536];
    for (;;) {
        ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
        if (got < 0) continue;
        std::fwrite(buffer, 1, static_cast<std::size_t>(got), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
    }
}
