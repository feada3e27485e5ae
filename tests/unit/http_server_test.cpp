// The server over real sockets on 127.0.0.1: the server's loop runs on a thread of the test, the
// test is the client (plain blocking sockets, every read bounded by poll()).
#include "http/server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <utility>

#include "util/errors.hpp"

using namespace workq;
using namespace std::chrono_literals;

namespace {

// A client connection. read_until_close() and answer() give up after `deadline`.
class Client {
  public:
    explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ =
            ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    }
    ~Client() { ::close(fd_); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool connected() const { return connected_; }
    void send(std::string_view bytes) {
        ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(bytes.size()));
    }
    // Sends one byte, whether or not the server still listens.
    void trickle(char byte) { [[maybe_unused]] auto sent = ::send(fd_, &byte, 1, MSG_NOSIGNAL); }
    // Whether bytes (or the end) arrive within `wait`.
    bool readable_within(std::chrono::milliseconds wait) {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
    }
    // Everything received until the server closes the connection, after what answer() read
    // past its response (pipelined answers can arrive in one segment).
    std::string read_until_close(std::chrono::milliseconds deadline = 20s) {
        std::string received = std::exchange(buffer_, {});
        char chunk[4096];
        while (readable_within(deadline)) {
            auto n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n <= 0) {
                closed_ = true;
                break;
            }
            received.append(chunk, static_cast<std::size_t>(n));
        }
        return received;
    }
    // One response to a request of ours: headers and the Content-Length bytes after them.
    std::string answer(std::chrono::milliseconds deadline = 20s) {
        char chunk[4096];
        for (;;) {
            auto end = buffer_.find("\r\n\r\n");
            if (end != std::string::npos) {
                auto length_at = buffer_.find("Content-Length: ");
                std::size_t length = 0;
                if (length_at != std::string::npos && length_at < end)
                    length = std::stoul(buffer_.substr(length_at + 16));
                if (buffer_.size() >= end + 4 + length) {
                    auto response = buffer_.substr(0, end + 4 + length);
                    buffer_.erase(0, end + 4 + length);
                    return response;
                }
            }
            if (!readable_within(deadline)) return "(no answer in time)";
            auto n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n <= 0) return "(closed) " + buffer_;
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    bool closed() const { return closed_; }

  private:
    int fd_;
    bool connected_ = false;
    bool closed_ = false;
    std::string buffer_;
};

constexpr std::string_view get_livez = "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n";

// A server on 127.0.0.1:0 with the given limits, its loop on a thread until the fixture ends.
class HttpServer : public ::testing::Test {
  protected:
    void start(http::Limits limits = {}) {
        http::Router router;
        router.handle("/livez",
                      [](const http::Request&) { return http::text_response(200, "ok"); });
        server_.emplace(io_, http::ListenAddress{"127.0.0.1", 0}, std::move(router), limits);
        port_ = server_->local_address().port;
        loop_ = std::thread([this] { io_.run(); });
    }
    void TearDown() override {
        if (!loop_.joinable()) return;
        boost::asio::post(io_, [this] {
            server_->stop();
            guard_.reset();
        });
        loop_.join();  // run() returns once the server's operations have ended
        server_.reset();
    }

    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
        io_.get_executor()};
    std::optional<http::Server> server_;
    std::uint16_t port_ = 0;
    std::thread loop_;
};

}  // namespace

TEST_F(HttpServer, AnswersRequestsOneAfterAnotherOnAKeptAliveConnection) {
    start();
    EXPECT_NE(port_, 0);
    Client client(port_);
    ASSERT_TRUE(client.connected());
    client.send(get_livez);
    auto first = client.answer();
    EXPECT_TRUE(first.starts_with("HTTP/1.1 200 OK\r\n")) << first;
    EXPECT_TRUE(first.ends_with("\r\n\r\nok\n")) << first;
    // Two pipelined requests on the same connection, the second asking to close it.
    client.send("GET /nope HTTP/1.1\r\n\r\nHEAD /livez HTTP/1.1\r\nConnection: close\r\n\r\n");
    EXPECT_TRUE(client.answer().starts_with("HTTP/1.1 404 Not Found\r\n"));
    auto head = client.read_until_close();
    EXPECT_TRUE(head.starts_with("HTTP/1.1 200 OK\r\n")) << head;
    EXPECT_NE(head.find("Content-Length: 3\r\n"), std::string::npos) << head;
    EXPECT_TRUE(head.ends_with("\r\n\r\n")) << "HEAD got a body: " << head;
    EXPECT_TRUE(client.closed());
}

TEST_F(HttpServer, ABadRequestIsAnsweredThenClosed) {
    start();
    Client client(port_);
    client.send("garbage\r\n\r\nGET /livez HTTP/1.1\r\n\r\n");
    auto answer = client.read_until_close();
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 Bad Request\r\n")) << answer;
    EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos);
    EXPECT_TRUE(client.closed());
}

TEST_F(HttpServer, OversizedHeadersGet431) {
    http::Limits limits;
    limits.max_header_bytes = 256;
    start(limits);
    Client client(port_);
    client.send("GET /livez HTTP/1.1\r\nX-Big: " + std::string(1000, 'a') + "\r\n\r\n");
    EXPECT_TRUE(client.read_until_close().starts_with("HTTP/1.1 431 "));
}

TEST_F(HttpServer, ASlowClientDelaysNobodyAndIsCutOffAtTheRequestTimeout) {
    http::Limits limits;
    limits.request_timeout = 500ms;
    start(limits);
    Client slow(port_);
    slow.send("GET /li");
    // Another client is answered while the slow one's request is unfinished.
    Client other(port_);
    other.send(get_livez);
    EXPECT_TRUE(other.answer().starts_with("HTTP/1.1 200 OK\r\n"));
    // The slow client sends a byte now and then, within the timeout each time: the deadline is
    // the whole request's, so it is cut off all the same.
    auto started = std::chrono::steady_clock::now();
    while (!slow.readable_within(100ms) && std::chrono::steady_clock::now() - started < 20s) {
        slow.trickle('v');
    }
    EXPECT_EQ(slow.read_until_close(), "");  // closed without an answer
    EXPECT_TRUE(slow.closed());
}

TEST_F(HttpServer, ConnectionsOverTheCapWaitForAPlace) {
    http::Limits limits;
    limits.max_connections = 2;
    start(limits);
    Client first(port_), second(port_);
    first.send("GET /li");
    second.send("GET /li");
    // Both are accepted (the server reads them); a third waits in the listen queue.
    Client third(port_);
    ASSERT_TRUE(third.connected());  // the kernel completes the handshake
    third.send(get_livez);
    EXPECT_FALSE(third.readable_within(300ms)) << "a third connection was served";
    // A place frees: the third is served.
    first.send("vez HTTP/1.1\r\nConnection: close\r\n\r\n");
    EXPECT_TRUE(first.read_until_close().starts_with("HTTP/1.1 200 OK\r\n"));
    EXPECT_TRUE(third.answer().starts_with("HTTP/1.1 200 OK\r\n"));
}

TEST_F(HttpServer, StopClosesEveryConnection) {
    start();
    Client idle(port_);
    idle.send("GET /li");
    Client served(port_);
    served.send(get_livez);
    ASSERT_TRUE(served.answer().starts_with("HTTP/1.1 200 OK\r\n"));
    std::promise<void> stopped;
    boost::asio::post(io_, [&] {
        server_->stop();
        stopped.set_value();
    });
    stopped.get_future().wait();
    EXPECT_EQ(idle.read_until_close(), "");
    EXPECT_TRUE(idle.closed());
    EXPECT_EQ(served.read_until_close(), "");
    EXPECT_TRUE(served.closed());
}

TEST(HttpServerListen, ATakenPortThrowsErrorNamingTheAddress) {
    boost::asio::io_context io;
    http::Server first(io, {"127.0.0.1", 0}, http::Router{});
    auto port = first.local_address().port;
    try {
        http::Server second(io, {"127.0.0.1", port}, http::Router{});
        FAIL() << "listened twice on port " << port;
    } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()), "cannot listen on 127.0.0.1:" + std::to_string(port) +
                                                 ": Address already in use");
    }
}
