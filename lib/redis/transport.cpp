#include "redis/transport.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

#include "redis/embedded.hpp"
#include "redis/tls.hpp"

namespace workq::redis {
namespace {

// Keepalive finds a server that vanished without a word (a host that died, a NAT that forgot
// us) on an idle connection: probes after 15 s of silence, every 5 s, three unanswered ones
// end it. The same values hiredis 1.x uses.
constexpr int keepalive_idle_s = 15;
constexpr int keepalive_interval_s = 5;
constexpr int keepalive_count = 3;

std::string errno_text(int error) {
    return std::strerror(error);
}

// A stream over a plain socket, TCP or Unix.
class PlainTransport final : public Transport {
  public:
    PlainTransport(UniqueFd fd, Endpoint::Kind kind) : Transport(std::move(fd)), kind_(kind) {}

    IoResult read(char* buffer, std::size_t size) override {
        for (;;) {
            auto n = ::read(fd(), buffer, size);
            if (n > 0) {
                // A TLS record (handshake 0x16, alert 0x15) where RESP was expected: a TLS port
                // behind a redis:// URL. RESP never starts with these bytes.
                if (!answered_ && (buffer[0] == 0x15 || buffer[0] == 0x16))
                    throw TransportError(
                        "the server answered with TLS: use a rediss:// URL for a TLS port");
                answered_ = true;
                return {static_cast<std::size_t>(n), Wait::none};
            }
            if (n == 0) throw TransportError(reset_reason(0));
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return {0, Wait::readable};
            throw TransportError(reset_reason(errno));
        }
    }

    bool short_read_drains() const override { return true; }

    IoResult write(const char* data, std::size_t size) override {
        for (;;) {
            // MSG_NOSIGNAL: a server gone away is an error to report, not SIGPIPE.
            auto n = ::send(fd(), data, size, MSG_NOSIGNAL);
            if (n >= 0) {
                if (n == 0 && size > 0) return {0, Wait::writable};
                return {static_cast<std::size_t>(n), Wait::none};
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return {0, Wait::writable};
            throw TransportError(reset_reason(errno));
        }
    }

    std::string security() const override {
        return kind_ == Endpoint::Kind::unix_socket ? "Unix socket" : "TCP";
    }

  private:
    // A Redis port that speaks TLS closes, without a word, a client that does not: with a
    // reset when our command was still unread there.
    std::string reset_reason(int error) const {
        bool unanswered_tcp = !answered_ && kind_ == Endpoint::Kind::tcp;
        if (unanswered_tcp && (error == 0 || error == ECONNRESET || error == EPIPE))
            return fmt::format(
                "{} before it answered (if that port speaks TLS, use a rediss:// URL)",
                error == 0 ? "closed by the server" : errno_text(error));
        return error == 0 ? "closed by the server" : errno_text(error);
    }

    Endpoint::Kind kind_;
    bool answered_ = false;
};

void set_option(int fd, int level, int name, int value) {
    // Best effort: a socket without these options still works.
    (void)::setsockopt(fd, level, name, &value, sizeof value);
}

}  // namespace

Connector::Connector(const Endpoint& endpoint) : endpoint_(endpoint) {
    // Checked on every connection, not only when the server is started: after a reboot or a
    // /tmp cleaner, another local user may have made the directory and a server in it.
    if (!endpoint.embedded_state.empty() && !check_embedded_socket_dir(endpoint.socket_path))
        throw TransportError(errno_text(ENOENT));
    if (endpoint.kind == Endpoint::Kind::unix_socket) {
        Address address;
        auto* un = reinterpret_cast<sockaddr_un*>(&address.storage);
        un->sun_family = AF_UNIX;
        if (endpoint.socket_path.size() >= sizeof un->sun_path)
            throw TransportError(
                fmt::format("the socket path is longer than {} bytes", sizeof un->sun_path - 1));
        std::memcpy(un->sun_path, endpoint.socket_path.c_str(), endpoint.socket_path.size() + 1);
        address.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                                endpoint.socket_path.size() + 1);
        addresses_.push_back(address);
        return;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    auto port = std::to_string(endpoint.port);
    int status = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found);
    if (status != 0)
        throw TransportError(status == EAI_SYSTEM ? errno_text(errno) : ::gai_strerror(status));
    for (auto* info = found; info; info = info->ai_next) {
        if (info->ai_addrlen > sizeof(sockaddr_storage)) continue;
        Address address;
        std::memcpy(&address.storage, info->ai_addr, info->ai_addrlen);
        address.length = info->ai_addrlen;
        addresses_.push_back(address);
    }
    ::freeaddrinfo(found);
    if (addresses_.empty()) throw TransportError("the host name has no address");
}

void Connector::start_next() {
    socket_.reset();
    in_progress_ = false;
    while (next_ < addresses_.size()) {
        const auto& address = addresses_[next_++];
        UniqueFd fd(
            ::socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd.valid()) {
            last_error_ = errno_text(errno);
            continue;
        }
        int status;
        do {
            status = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address.storage),
                               address.length);
        } while (status != 0 && errno == EINTR);
        if (status == 0 || errno == EINPROGRESS) {
            in_progress_ = status != 0;
            socket_ = std::move(fd);
            return;
        }
        last_error_ = errno_text(errno);
    }
}

Wait Connector::step() {
    if (socket_.valid() && in_progress_) {
        int error = 0;
        socklen_t length = sizeof error;
        if (::getsockopt(socket_.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
        if (error == 0) {
            // Writable with no error: connected, unless the wait woke early.
            sockaddr_storage peer{};
            socklen_t peer_length = sizeof peer;
            if (::getpeername(socket_.get(), reinterpret_cast<sockaddr*>(&peer), &peer_length) ==
                0) {
                in_progress_ = false;
                return Wait::none;
            }
            if (errno != ENOTCONN) error = errno;
            if (error == 0) return Wait::writable;
        }
        last_error_ = errno_text(error);
        socket_.reset();
    }
    if (socket_.valid()) return Wait::none;
    start_next();
    if (!socket_.valid())
        throw TransportError(last_error_.empty() ? "no address to connect to" : last_error_);
    return in_progress_ ? Wait::writable : Wait::none;
}

std::unique_ptr<Transport> Connector::finish() {
    if (endpoint_.kind == Endpoint::Kind::tcp) {
        set_option(socket_.get(), IPPROTO_TCP, TCP_NODELAY, 1);
        set_option(socket_.get(), SOL_SOCKET, SO_KEEPALIVE, 1);
        set_option(socket_.get(), IPPROTO_TCP, TCP_KEEPIDLE, keepalive_idle_s);
        set_option(socket_.get(), IPPROTO_TCP, TCP_KEEPINTVL, keepalive_interval_s);
        set_option(socket_.get(), IPPROTO_TCP, TCP_KEEPCNT, keepalive_count);
    }
    if (!endpoint_.embedded_state.empty())
        check_embedded_peer(socket_.get(), endpoint_.socket_path, endpoint_.embedded_state);
    if (endpoint_.tls.enabled) return make_tls_transport(std::move(socket_), endpoint_);
    return std::make_unique<PlainTransport>(std::move(socket_), endpoint_.kind);
}

}  // namespace workq::redis
