// workq-fault-proxy: a TCP proxy between workq's tools and a test's redis-server that injects
// the network faults of the fault suite (tests/fault), steered over a Unix control socket.
// Built with the tests only.
//
//   workq-fault-proxy --listen 127.0.0.1:0 --upstream 127.0.0.1:PORT --control PATH
//       prints the port it listens on (one line), then serves until SIGTERM/SIGINT.
//   workq-fault-proxy --control PATH COMMAND [ARG...]
//       sends one command and prints the proxy's one-line answer; exit 0 on "ok ...", else 1.
//
// Commands:
//   pass           forward everything; listen again after `refuse`; clears delay, drop and cut
//                  (connections held by `blackhole` stay held: that peer is gone for good)
//   delay MS       hold every chunk, both ways, MS milliseconds before forwarding it
//   blackhole      half-open: every connection, open or new, is held and forwards nothing
//   reset          reset every connection now (RST to the client, close to the server)
//   refuse         stop listening: new connections are refused
//   drop N [TEXT]  lose the next N replies (to commands whose words contain TEXT): the command
//                  is applied, its reply never arrives, and its connection is reset (later
//                  replies on it would answer the wrong commands). Not on TLS connections,
//                  whose bytes are opaque: the other faults apply to them as to any stream
//   cut N          reset the next connection that receives more than N further reply bytes,
//                  after forwarding exactly N
//   stats          counters: open, held, accepted, dropped, resets, cuts, bytes each way
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "resp_framer.hpp"

namespace workq::fault {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using unix_socket = asio::local::stream_protocol;

constexpr std::size_t chunk_size = 64 * 1024;

// One client connection and its connection to the server.
struct Link {
    std::uint64_t id = 0;
    tcp::socket client;
    tcp::socket server;
    bool held = false;      // blackholed: nothing is forwarded, ever again
    bool closed = false;    // reset or ended: the pumps stop
    bool unparsed = false;  // the stream was not RESP: forwarded raw, drops do not apply
    std::string requests;   // bytes of a command not yet complete
    std::string replies;    // bytes of a reply not yet complete (held back until complete)
    std::deque<std::string> awaiting;  // words of each command whose reply is due, in order

    explicit Link(asio::io_context& io) : client(io), server(io) {}
};

class Proxy {
  public:
    Proxy(asio::io_context& io, tcp::endpoint listen, tcp::endpoint upstream,
          const std::string& control_path)
        : io_(io), acceptor_(io), upstream_(upstream), control_(io) {
        open_acceptor(listen);
        ::unlink(control_path.c_str());
        control_.open();
        control_.bind(unix_socket::endpoint(control_path));
        control_.listen();
    }

    unsigned short port() const { return listen_.port(); }

    void start() {
        asio::co_spawn(io_, accept_loop(), asio::detached);
        asio::co_spawn(io_, control_loop(), asio::detached);
    }

  private:
    void open_acceptor(tcp::endpoint at) {
        acceptor_.open(at.protocol());
        acceptor_.set_option(tcp::acceptor::reuse_address(true));
        acceptor_.bind(at);
        acceptor_.listen();
        listen_ = acceptor_.local_endpoint();
    }

    awaitable<void> accept_loop() {
        for (;;) {
            error_code error;
            auto link = std::make_shared<Link>(io_);
            co_await acceptor_.async_accept(link->client,
                                            asio::redirect_error(use_awaitable, error));
            if (error == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
            if (error) continue;
            link->id = ++accepted_;
            links_[link->id] = link;
            link->client.set_option(tcp::no_delay(true));
            if (blackhole_) {
                link->held = true;  // accepted, and then silence
                continue;
            }
            asio::co_spawn(io_, serve(link), asio::detached);
        }
    }

    awaitable<void> serve(std::shared_ptr<Link> link) {
        error_code error;
        co_await link->server.async_connect(upstream_, asio::redirect_error(use_awaitable, error));
        if (link->closed || link->held) co_return;
        if (error) {
            reset(*link);
            co_return;
        }
        link->server.set_option(tcp::no_delay(true));
        asio::co_spawn(io_, pump_requests(link), asio::detached);
        asio::co_spawn(io_, pump_replies(link), asio::detached);
    }

    awaitable<void> pause_for_delay() {
        if (delay_.count() <= 0) co_return;
        asio::steady_timer timer(io_, delay_);
        error_code ignored;
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
    }

    // Client -> server: forwarded as it comes; each complete command's words are noted, to
    // know which command each reply answers.
    awaitable<void> pump_requests(std::shared_ptr<Link> link) {
        std::vector<char> buffer(chunk_size);
        for (;;) {
            error_code error;
            auto n = co_await link->client.async_read_some(
                asio::buffer(buffer), asio::redirect_error(use_awaitable, error));
            if (link->closed || link->held) co_return;
            if (error) {
                end(*link);
                co_return;
            }
            std::string_view chunk(buffer.data(), n);
            note_commands(*link, chunk);
            co_await pause_for_delay();
            if (link->closed || link->held) co_return;
            co_await asio::async_write(link->server, asio::buffer(chunk),
                                       asio::redirect_error(use_awaitable, error));
            if (link->closed || link->held) co_return;
            if (error) {
                end(*link);
                co_return;
            }
            bytes_up_ += n;
        }
    }

    void note_commands(Link& link, std::string_view chunk) {
        if (link.unparsed) return;
        // A TLS client (rediss://) opens with a handshake record (0x16), which would otherwise
        // read as an inline command that never ends. Its bytes are opaque: forwarded as they
        // come, so `drop` cannot pick a reply out; delay, blackhole, reset, refuse and cut work
        // on them as on any stream.
        if (link.requests.empty() && link.awaiting.empty() && !chunk.empty() &&
            chunk.front() == '\x16') {
            if (!tls_noted_) std::cerr << "workq-fault-proxy: a TLS client; forwarding it raw\n";
            tls_noted_ = true;
            link.unparsed = true;
            return;
        }
        link.requests.append(chunk);
        std::size_t used = 0;
        for (;;) {
            auto command = scan_command(std::string_view(link.requests).substr(used));
            if (command.status == Scan::incomplete) break;
            if (command.status == Scan::malformed) {
                std::cerr << "workq-fault-proxy: not RESP from a client; forwarding it raw\n";
                link.unparsed = true;
                link.requests.clear();
                return;
            }
            link.awaiting.push_back(std::move(command.words));
            used += command.length;
        }
        link.requests.erase(0, used);
    }

    // Server -> client: only whole replies go on (a lost reply is lost whole); each is matched
    // with its command for `drop`; `cut` counts bytes.
    awaitable<void> pump_replies(std::shared_ptr<Link> link) {
        std::vector<char> buffer(chunk_size);
        for (;;) {
            error_code error;
            auto n = co_await link->server.async_read_some(
                asio::buffer(buffer), asio::redirect_error(use_awaitable, error));
            if (link->closed || link->held) co_return;
            if (error) {
                end(*link);
                co_return;
            }
            bool reset_after = false;
            std::string out = take_replies(*link, std::string_view(buffer.data(), n), reset_after);
            if (cut_left_ >= 0 && !out.empty()) {
                if (out.size() > static_cast<std::size_t>(cut_left_)) {
                    out.resize(static_cast<std::size_t>(cut_left_));
                    cut_left_ = -1;
                    ++cuts_;
                    reset_after = true;
                } else {
                    cut_left_ -= static_cast<long long>(out.size());
                }
            }
            co_await pause_for_delay();
            if (link->closed || link->held) co_return;
            if (!out.empty()) {
                co_await asio::async_write(link->client, asio::buffer(out),
                                           asio::redirect_error(use_awaitable, error));
                if (link->closed || link->held) co_return;
                if (error) {
                    end(*link);
                    co_return;
                }
                bytes_down_ += out.size();
            }
            if (reset_after) {
                reset(*link);
                co_return;
            }
        }
    }

    // The complete replies in the link's buffer after `chunk`, minus a dropped one and all
    // after it (then `reset_after` is set).
    std::string take_replies(Link& link, std::string_view chunk, bool& reset_after) {
        if (link.unparsed) return std::string(chunk);
        link.replies.append(chunk);
        std::size_t used = 0;
        for (;;) {
            auto value = scan_value(std::string_view(link.replies).substr(used));
            if (value.status == Scan::incomplete) break;
            if (value.status == Scan::malformed) {
                std::cerr << "workq-fault-proxy: not RESP from the server; forwarding it raw\n";
                link.unparsed = true;
                return std::exchange(link.replies, {});
            }
            std::string words;
            if (!link.awaiting.empty()) {
                words = std::move(link.awaiting.front());
                link.awaiting.pop_front();
            }
            if (drop_left_ > 0 && words.find(drop_match_) != std::string::npos) {
                --drop_left_;
                ++dropped_;
                reset_after = true;
                std::string out = link.replies.substr(0, used);
                link.replies.clear();
                return out;
            }
            used += value.length;
        }
        std::string out = link.replies.substr(0, used);
        link.replies.erase(0, used);
        return out;
    }

    // The client or the server ended the connection: end the other side too.
    void end(Link& link) {
        if (link.closed) return;
        link.closed = true;
        error_code ignored;
        link.client.close(ignored);
        link.server.close(ignored);
        links_.erase(link.id);
    }

    // A reset the client sees as one (RST, not FIN).
    void reset(Link& link) {
        if (link.closed) return;
        error_code ignored;
        link.client.set_option(tcp::socket::linger(true, 0), ignored);
        ++resets_;
        end(link);
    }

    awaitable<void> control_loop() {
        for (;;) {
            unix_socket::socket peer(io_);
            error_code error;
            co_await control_.async_accept(peer, asio::redirect_error(use_awaitable, error));
            if (error == asio::error::operation_aborted) co_return;
            if (error) continue;
            std::string line;
            co_await asio::async_read_until(peer, asio::dynamic_buffer(line), '\n',
                                            asio::redirect_error(use_awaitable, error));
            if (error) continue;
            line.resize(line.find('\n'));
            auto answer = execute(line) + "\n";
            co_await asio::async_write(peer, asio::buffer(answer),
                                       asio::redirect_error(use_awaitable, error));
        }
    }

    static std::optional<long long> count_of(const std::string& text) {
        long long value = 0;
        auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (error != std::errc() || end != text.data() + text.size() || value < 0)
            return std::nullopt;
        return value;
    }

    std::string execute(const std::string& line) {
        std::istringstream in(line);
        std::string verb, argument;
        in >> verb >> argument;
        std::string rest;
        std::getline(in >> std::ws, rest);
        if (verb == "pass") {
            blackhole_ = false;
            delay_ = std::chrono::milliseconds(0);
            drop_left_ = 0;
            cut_left_ = -1;
            if (!acceptor_.is_open()) {
                try {
                    open_acceptor(listen_);
                } catch (const std::exception& e) {
                    return fmt::format("error cannot listen again: {}", e.what());
                }
                asio::co_spawn(io_, accept_loop(), asio::detached);
            }
            return "ok pass";
        }
        if (verb == "delay") {
            auto ms = count_of(argument);
            if (!ms) return "error delay needs milliseconds";
            delay_ = std::chrono::milliseconds(*ms);
            return fmt::format("ok delay {}", *ms);
        }
        if (verb == "blackhole") {
            blackhole_ = true;
            for (auto& [id, link] : links_)
                link->held = true;
            return fmt::format("ok blackhole {} held", links_.size());
        }
        if (verb == "reset") {
            auto links = links_;
            for (auto& [id, link] : links)
                reset(*link);
            return fmt::format("ok reset {}", links.size());
        }
        if (verb == "refuse") {
            error_code ignored;
            acceptor_.close(ignored);
            return "ok refuse";
        }
        if (verb == "drop") {
            auto n = count_of(argument);
            if (!n) return "error drop needs a count";
            drop_left_ = *n;
            drop_match_ = rest;
            return fmt::format("ok drop {}", *n);
        }
        if (verb == "cut") {
            auto n = count_of(argument);
            if (!n) return "error cut needs a byte count";
            cut_left_ = *n;
            return fmt::format("ok cut {}", *n);
        }
        if (verb == "stats") {
            std::size_t held = 0;
            for (auto& [id, link] : links_)
                held += link->held ? 1 : 0;
            return fmt::format(
                "ok open={} held={} accepted={} dropped={} drop_left={} resets={} cuts={} "
                "up={} down={} listening={}",
                links_.size(), held, accepted_, dropped_, drop_left_, resets_, cuts_, bytes_up_,
                bytes_down_, acceptor_.is_open() ? 1 : 0);
        }
        return fmt::format("error unknown command '{}'", verb);
    }

    asio::io_context& io_;
    tcp::acceptor acceptor_;
    tcp::endpoint listen_;
    tcp::endpoint upstream_;
    unix_socket::acceptor control_;
    std::map<std::uint64_t, std::shared_ptr<Link>> links_;

    bool blackhole_ = false;
    std::chrono::milliseconds delay_{0};
    long long drop_left_ = 0;
    std::string drop_match_;
    long long cut_left_ = -1;
    bool tls_noted_ = false;  // said once that TLS links are forwarded raw

    std::uint64_t accepted_ = 0, dropped_ = 0, resets_ = 0, cuts_ = 0;
    std::uint64_t bytes_up_ = 0, bytes_down_ = 0;
};

tcp::endpoint parse_endpoint(const std::string& text) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("expected HOST:PORT: " + text);
    auto port = std::stoi(text.substr(colon + 1));
    if (port < 0 || port > 65535) throw std::runtime_error("bad port: " + text);
    return {asio::ip::make_address(text.substr(0, colon)), static_cast<unsigned short>(port)};
}

int control_client(const std::string& path, const std::string& command) {
    asio::io_context io;
    unix_socket::socket socket(io);
    socket.connect(unix_socket::endpoint(path));
    auto line = command + "\n";
    asio::write(socket, asio::buffer(line));
    std::string answer;
    asio::read_until(socket, asio::dynamic_buffer(answer), '\n');
    answer.resize(answer.find('\n'));
    std::cout << answer << "\n";
    return answer.starts_with("ok") ? 0 : 1;
}

int serve(const std::string& listen, const std::string& upstream, const std::string& control) {
    asio::io_context io;
    Proxy proxy(io, parse_endpoint(listen), parse_endpoint(upstream), control);
    std::cout << proxy.port() << std::endl;
    proxy.start();
    asio::signal_set stop(io, SIGTERM, SIGINT);
    stop.async_wait([&](auto, int) { io.stop(); });
    io.run();
    ::unlink(control.c_str());
    return 0;
}

int run(int argc, char** argv) {
    std::string listen, upstream, control;
    std::vector<std::string> words;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--listen")
            listen = value();
        else if (arg == "--upstream")
            upstream = value();
        else if (arg == "--control")
            control = value();
        else
            words.push_back(arg);
    }
    if (control.empty()) throw std::runtime_error("--control PATH is required");
    if (!words.empty()) {
        std::string command;
        for (const auto& word : words)
            command += (command.empty() ? "" : " ") + word;
        return control_client(control, command);
    }
    if (listen.empty() || upstream.empty())
        throw std::runtime_error("usage: --listen HOST:PORT --upstream HOST:PORT --control PATH");
    return serve(listen, upstream, control);
}

}  // namespace
}  // namespace workq::fault

int main(int argc, char** argv) {
    try {
        return workq::fault::run(argc, argv);
    } catch (const std::exception& error) {
        std::cerr << "workq-fault-proxy: error: " << error.what() << "\n";
        return 2;
    }
}
