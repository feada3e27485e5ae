// A small HTTP/1.1 server for probes and metrics, on the caller's Boost.Asio event loop: it
// makes no thread, and its handlers run on that loop between the loop's other work, so a
// handler sees the program's state only as it is between two events, never half-updated.
// What one client can take is bounded (router.hpp, Limits): a slow or huge request is cut off
// by the timeouts and the size caps, and never holds the loop, which only waits on sockets.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "http/address.hpp"
#include "http/router.hpp"

namespace workq::http {

class Server {
  public:
    // Binds and listens at once, so that a caller can report a taken port before anything else;
    // throws Error ("cannot listen on 127.0.0.1:9000: Address already in use") when it cannot.
    // Connections are accepted and served once `io` runs, until stop().
    Server(boost::asio::io_context& io, const ListenAddress& address, Router router,
           Limits limits = {});
    // Stops (see stop()). Destroy it before `io`, as any object with operations on a loop.
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Where it listens: the port the kernel picked when the address asked for port 0.
    ListenAddress local_address() const;

    // Registers a handler (Router::handle) while serving.
    void handle(std::string path, Handler handler);

    // Stops accepting and closes every connection, dropping requests not yet answered; pending
    // operations finish on the loop (aborted) soon after. Idempotent.
    void stop();

    // The listening socket, the router and the open connections, shared with the connections'
    // pending operations, which may end after the Server object. Opaque.
    struct State;

  private:
    std::shared_ptr<State> state_;
};

}  // namespace workq::http
