// The byte stream under every connection to Redis: TCP, a Unix socket, or TLS over TCP (issue
// 17). hiredis 0.14 only parses and formats RESP for us (redis/resp.hpp); the sockets are ours,
// so that the blocking and the asynchronous connection open, read and write them the same way
// and a later move to another client library changes this layer only.
//
// Everything here is non-blocking: a call that cannot go on says what to wait for (the socket
// becoming readable or writable) and is called again once it has. The blocking connection
// waits with poll(), the asynchronous one on its io_context.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "redis/url.hpp"
#include "util/errors.hpp"
#include "util/fd.hpp"

namespace workq::redis {

// The reason a connection cannot go on (refused, reset, closed by the server, a certificate
// that does not verify), without the server's name: the connection adds it, with what it was
// doing. Exit 3, as every RedisError.
struct TransportError : RedisError {
    using RedisError::RedisError;
};

// The socket's directory or the process answering on it is not who it must be (the embedded
// server's checks, redis/embedded.hpp): someone else's server, not "no server there". Never
// taken for an absent server, whose socket could then be removed or replaced.
struct UntrustedServer : TransportError {
    using TransportError::TransportError;
};

// What a non-blocking call waits for before it can go on.
enum class Wait { none, readable, writable };

// One read or write: the bytes moved, or none and what to wait for.
struct IoResult {
    std::size_t bytes = 0;
    Wait wait = Wait::none;  // set when `bytes` is 0
};

// A connected socket, with the protocol on it (plain or TLS). Owns the descriptor.
class Transport {
  public:
    virtual ~Transport() = default;
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    int fd() const { return fd_.get(); }

    // Completes what must happen before the first command (the TLS handshake and the check of
    // the server's certificate): Wait::none when done, else what to wait for before calling
    // again. Throws TransportError with the reason.
    virtual Wait handshake() { return Wait::none; }

    // Reads or writes what it can without blocking. Throws TransportError when the connection
    // ends: reset, closed by the server (even cleanly: a Redis server never closes first
    // unless something is wrong), a TLS error.
    virtual IoResult read(char* buffer, std::size_t size) = 0;
    virtual IoResult write(const char* data, std::size_t size) = 0;
    // True when a read that returns fewer bytes than asked has taken all the socket held, so
    // that the caller may wait for readability instead of reading again to be told to (a plain
    // socket). TLS hands out a record at a time: it reads until it says to wait.
    virtual bool short_read_drains() const { return false; }

    // Says goodbye when the connection is closed on purpose (TLS: close_notify). Best effort,
    // never blocks, never throws.
    virtual void shutdown() {}

    // How the bytes travel, for `workq-status`: "TCP", "Unix socket", or the TLS version,
    // cipher and the name the server's certificate was verified for.
    virtual std::string security() const = 0;

  protected:
    explicit Transport(UniqueFd fd) : fd_(std::move(fd)) {}

  private:
    UniqueFd fd_;
};

// Opens the socket to an endpoint without blocking (but for the name lookup, which the
// system resolver does synchronously, as hiredis did): tries each address the host name
// resolves to until one accepts, then wraps the socket in the transport the endpoint asks for.
class Connector {
  public:
    // Resolves the endpoint's address. Throws TransportError when the name does not resolve
    // or the socket path does not fit a Unix socket address; for the embedded server, when its
    // socket directory is missing, or UntrustedServer when that directory is not ours alone.
    explicit Connector(const Endpoint& endpoint);

    // Starts or goes on connecting: Wait::none once connected, else Wait::writable (on fd(),
    // which changes when one address fails and the next is tried). Throws TransportError with
    // the last address's reason when none is left.
    Wait step();
    int fd() const { return socket_.get(); }

    // The connected socket as a transport, with TCP_NODELAY and keepalive on a TCP one. Call
    // after step() returned Wait::none. For the embedded server, throws UntrustedServer when
    // the process answering is not our server (redis/embedded.hpp).
    std::unique_ptr<Transport> finish();

  private:
    void start_next();

    struct Address {
        sockaddr_storage storage{};
        socklen_t length = 0;
    };

    Endpoint endpoint_;
    std::vector<Address> addresses_;
    std::size_t next_ = 0;
    UniqueFd socket_;
    bool in_progress_ = false;
    std::string last_error_;
};

}  // namespace workq::redis
