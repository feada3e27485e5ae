#include "http/server.hpp"

#include <fmt/format.h>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <list>
#include <optional>

#include "http/message.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"

namespace workq::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

// After a failed accept (out of fds: EMFILE), the next try waits this long instead of spinning
// on the loop; connections that end meanwhile give fds back.
constexpr std::chrono::milliseconds accept_retry_delay{100};

// After answering a bad request, the rest of what the client sends is read and dropped for at
// most this long before the socket closes: closing with unread bytes resets the connection, and
// the reset can destroy the answer before the client reads it.
constexpr std::chrono::milliseconds linger_timeout{1000};

class Connection;

}  // namespace

struct Server::State : std::enable_shared_from_this<Server::State> {
    State(asio::io_context& io, Router r, Limits l)
        : acceptor(io), retry_timer(io), router(std::move(r)), limits(l) {}

    void accept();

    tcp::acceptor acceptor;
    asio::steady_timer retry_timer;
    Router router;
    Limits limits;
    std::list<std::weak_ptr<Connection>> connections;
    bool accepting = false;  // an async_accept is pending
    bool stopped = false;
};

namespace {

// One client connection: read a request (within the request timeout), answer it (within the
// write timeout), again while the client keeps the connection alive. Owned by the handlers of
// its pending operation; the server's list only lets stop() close it.
class Connection : public std::enable_shared_from_this<Connection> {
  public:
    Connection(std::shared_ptr<Server::State> state, tcp::socket socket)
        : state_(std::move(state)), stream_(std::move(socket)) {}
    ~Connection() { release(); }

    void start(std::list<std::weak_ptr<Connection>>::iterator self) {
        self_ = self;
        read();
    }

    // Closes the socket: the pending operation ends with operation_aborted.
    void close() {
        stream_.close();
        release();
    }

  private:
    void read() {
        parser_.emplace();
        apply_limits(*parser_, state_->limits);
        stream_.expires_after(state_->limits.request_timeout);
        beast::http::async_read(stream_, buffer_, *parser_,
                                [self = shared_from_this()](beast::error_code error, std::size_t) {
                                    self->on_read(error);
                                });
    }

    void on_read(beast::error_code error) {
        if (released_) return;
        if (error) {
            // A timeout, a reset, the client's end: nothing to answer.
            if (!is_bad_request(error)) return close();
            response_ = answer_unreadable(error);
        } else {
            response_ = answer(state_->router, parser_->get());
        }
        write();
    }

    void write() {
        stream_.expires_after(state_->limits.write_timeout);
        beast::http::async_write(stream_, response_,
                                 [self = shared_from_this()](beast::error_code error, std::size_t) {
                                     self->on_write(error);
                                 });
    }

    void on_write(beast::error_code error) {
        if (released_) return;
        if (error) return close();
        if (response_.keep_alive()) return read();
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.expires_after(linger_timeout);
        drain();
    }

    // Reads and drops until the client closes its end or the linger timeout passes.
    void drain() {
        stream_.async_read_some(asio::buffer(scratch_),
                                [self = shared_from_this()](beast::error_code error, std::size_t) {
                                    if (self->released_) return;
                                    if (error) return self->close();
                                    self->drain();
                                });
    }

    // Gives the connection's place back (once): another client may be accepted.
    void release() {
        if (released_) return;
        released_ = true;
        if (self_) state_->connections.erase(*self_);
        state_->accept();
    }

    std::shared_ptr<Server::State> state_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<RequestParser> parser_;
    ResponseMessage response_;
    std::array<char, 4096> scratch_{};
    std::optional<std::list<std::weak_ptr<Connection>>::iterator> self_;
    bool released_ = false;
};

}  // namespace

void Server::State::accept() {
    if (stopped || accepting || connections.size() >= limits.max_connections) return;
    accepting = true;
    acceptor.async_accept([self = shared_from_this()](beast::error_code error, tcp::socket socket) {
        self->accepting = false;
        if (self->stopped) return;
        if (error) {
            log::warn(fmt::format("http: cannot accept a connection: {}", error.message()));
            self->retry_timer.expires_after(accept_retry_delay);
            self->retry_timer.async_wait([self](beast::error_code waited) {
                if (!waited) self->accept();
            });
            return;
        }
        auto connection = std::make_shared<Connection>(self, std::move(socket));
        self->connections.push_back(connection);
        connection->start(std::prev(self->connections.end()));
        self->accept();
    });
}

Server::Server(asio::io_context& io, const ListenAddress& address, Router router, Limits limits)
    : state_(std::make_shared<State>(io, std::move(router), limits)) {
    beast::error_code error;
    auto ip = asio::ip::make_address(address.host, error);
    tcp::endpoint endpoint(ip, address.port);
    auto& acceptor = state_->acceptor;
    if (!error) acceptor.open(endpoint.protocol(), error);
    // A restarted exporter must get its port back while the old connections sit in TIME_WAIT.
    if (!error) acceptor.set_option(tcp::acceptor::reuse_address(true), error);
    if (!error) acceptor.bind(endpoint, error);
    if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error)
        throw Error(fmt::format("cannot listen on {}: {}", describe(address), error.message()));
    state_->accept();
}

Server::~Server() {
    stop();
}

ListenAddress Server::local_address() const {
    beast::error_code error;
    auto endpoint = state_->acceptor.local_endpoint(error);
    return {endpoint.address().to_string(), endpoint.port()};
}

void Server::handle(std::string path, Handler handler) {
    state_->router.handle(std::move(path), std::move(handler));
}

void Server::stop() {
    if (state_->stopped) return;
    state_->stopped = true;
    beast::error_code ignored;
    state_->acceptor.close(ignored);
    state_->retry_timer.cancel();
    // close() erases the connection from the list: walk a copy.
    auto connections = state_->connections;
    for (auto& weak : connections)
        if (auto connection = weak.lock()) connection->close();
}

}  // namespace workq::http
