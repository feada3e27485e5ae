#include "redis/sentinel.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <boost/asio/post.hpp>
#include <charconv>
#include <random>
#include <thread>

#include "redis/async_connection.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/names.hpp"

namespace workq::redis {
namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// Between two rounds of asking, while a failover is under way: the sentinels need a second or
// more to agree on a new master, so the first retries come soon and the later ones no faster
// than once a second.
constexpr Millis first_retry{100};
constexpr Millis retry_cap{1000};

std::string name_of(const HostPort& address) {
    return host_port(address.host, address.port);
}

// The last sentinel that answered, per master name: one process talks to one set of sentinels
// (the tools are single-threaded; the worker's connections share its one thread).
std::optional<HostPort>& last_answer(const SentinelSettings& settings) {
    static std::vector<std::pair<std::string, std::optional<HostPort>>> answers;
    for (auto& [name, answer] : answers)
        if (name == settings.master_name) return answer;
    return answers.emplace_back(settings.master_name, std::nullopt).second;
}

Millis jittered(Millis base) {
    static std::minstd_rand random(std::random_device{}());
    std::uniform_real_distribution<double> factor(0.5, 1.5);
    return Millis(static_cast<long long>(static_cast<double>(base.count()) * factor(random)));
}

std::string unknown_master_reason(const SentinelSettings& settings) {
    return fmt::format("watches no master named '{}'", printable(settings.master_name, 200));
}

// A search for the master on the io_context: one sentinel at a time, each once.
class Search : public std::enable_shared_from_this<Search> {
  public:
    Search(boost::asio::io_context& io, const Endpoint& endpoint, MasterFoundHandler done)
        : io_(io),
          endpoint_(endpoint),
          order_(sentinels_in_turn(*endpoint.sentinel)),
          done_(std::move(done)) {}
    ~Search() {
        if (sentinel_) sentinel_->close();
    }

    void next() {
        if (sentinel_) {
            sentinel_->close();
            sentinel_.reset();
        }
        if (index_ >= order_.size()) {
            finish(std::nullopt);
            return;
        }
        const auto& address = order_[index_++];
        sentinel_ = AsyncConnection::open(
            io_, sentinel_node(endpoint_, address), sentinel_timeout,
            [self = weak_from_this(), address](std::optional<std::string> error) {
                auto search = self.lock();
                if (!search) return;
                if (error) {
                    search->note(address, *error);
                    return search->next_later();
                }
                search->ask(address);
            },
            [](const std::string&) {});  // a lost connection shows as a missing reply
    }

  private:
    void ask(const HostPort& address) {
        sentinel_->command(
            {"SENTINEL", "get-master-addr-by-name", endpoint_.sentinel->master_name},
            [self = weak_from_this(), address](std::optional<Reply> reply) {
                auto search = self.lock();
                if (!search) return;
                if (!reply) {
                    search->note(address, "no answer");
                    return search->next();
                }
                auto answer = parse_master_address(*reply);
                if (answer.master) {
                    remember_answer(*search->endpoint_.sentinel, address);
                    return search->finish(answer.master);
                }
                search->note(address, answer.unknown_master
                                          ? unknown_master_reason(*search->endpoint_.sentinel)
                                          : answer.error);
                search->next();
            },
            sentinel_timeout);
    }

    // on_ready runs inside AsyncConnection's fail(): move on from the io_context instead.
    void next_later() {
        boost::asio::post(io_, [self = weak_from_this()] {
            if (auto search = self.lock()) search->next();
        });
    }

    void note(const HostPort& address, const std::string& what) {
        errors_ +=
            fmt::format("{}sentinel {}: {}", errors_.empty() ? "" : "; ", name_of(address), what);
    }

    void finish(std::optional<HostPort> master) {
        if (sentinel_) {
            sentinel_->close();
            sentinel_.reset();
        }
        if (!done_) return;
        boost::asio::post(io_, [self = weak_from_this(), done = std::exchange(done_, nullptr),
                                master = std::move(master), errors = errors_] {
            if (self.lock()) done(master, errors);
        });
    }

    boost::asio::io_context& io_;
    Endpoint endpoint_;
    std::vector<HostPort> order_;
    std::size_t index_ = 0;
    std::shared_ptr<AsyncConnection> sentinel_;
    std::string errors_;
    MasterFoundHandler done_;
};

}  // namespace

Endpoint sentinel_node(const Endpoint& endpoint, const HostPort& sentinel) {
    Endpoint node = endpoint;  // the transport settings (TLS) are the same for both
    node.kind = Endpoint::Kind::tcp;
    node.host = sentinel.host;
    node.port = sentinel.port;
    node.database = 0;
    node.username.clear();
    node.password = endpoint.sentinel ? endpoint.sentinel->password : "";
    node.sentinel.reset();
    return node;
}

std::vector<HostPort> sentinels_in_turn(const SentinelSettings& settings) {
    auto order = settings.sentinels;
    if (const auto& last = last_answer(settings)) {
        auto found = std::find(order.begin(), order.end(), *last);
        if (found != order.end()) std::rotate(order.begin(), found, found + 1);
    }
    return order;
}

void remember_answer(const SentinelSettings& settings, const HostPort& sentinel) {
    last_answer(settings) = sentinel;
}

SentinelAnswer parse_master_address(const Reply& reply) {
    SentinelAnswer answer;
    if (reply.is_nil()) {
        answer.unknown_master = true;
        return answer;
    }
    if (reply.is_error()) {
        answer.error = printable(reply.text, 200);
        return answer;
    }
    int port = 0;
    if (reply.is_array() && reply.elements.size() == 2 && reply.elements[0].is_string() &&
        reply.elements[1].is_string() && !reply.elements[0].text.empty()) {
        const auto& text = reply.elements[1].text;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
        if (ec == std::errc{} && end == text.data() + text.size() && port > 0 && port <= 65535) {
            answer.master = HostPort{reply.elements[0].text, port};
            return answer;
        }
    }
    answer.error = "unexpected answer " + reply.describe();
    return answer;
}

std::string role_of(const Reply& reply) {
    if (reply.is_array() && !reply.elements.empty() && reply.elements[0].is_string())
        return reply.elements[0].text;
    return reply.describe();
}

std::string not_master_reason(const Endpoint& node, const std::string& role) {
    return fmt::format("{} answers ROLE as {}, not as master (a failover under way?)",
                       describe(node), printable(role == "slave" ? "replica" : role, 100));
}

bool is_failover_error(const Reply& reply) {
    return reply.is_error() &&
           (reply.text.starts_with("READONLY") || reply.text.starts_with("UNBLOCKED"));
}

Connection connect_to_master(const Endpoint& endpoint, Timeouts timeouts) {
    const auto& settings = *endpoint.sentinel;
    auto deadline = Clock::now() + timeouts.failover;
    auto left = [&] {
        return std::max(Millis(1), std::chrono::ceil<Millis>(deadline - Clock::now()));
    };
    auto delay = first_retry;
    // What the last round that asked anyone heard: a round cut short by the deadline before it
    // asked a sentinel would otherwise leave the final message without a reason.
    std::string heard;
    for (;;) {
        std::string errors;
        auto note = [&](const std::string& what) { errors += (errors.empty() ? "" : "; ") + what; };
        std::optional<HostPort> master;
        std::size_t unknown = 0, asked = 0;
        for (const auto& address : sentinels_in_turn(settings)) {
            if (Clock::now() >= deadline) break;
            ++asked;
            auto limit = std::min(sentinel_timeout, left());
            try {
                auto sentinel =
                    Connection::open_server(sentinel_node(endpoint, address), {limit, limit});
                auto answer = parse_master_address(sentinel.command(
                    {"SENTINEL", "get-master-addr-by-name", settings.master_name}));
                if (answer.master) {
                    remember_answer(settings, address);
                    master = answer.master;
                    break;
                }
                unknown += answer.unknown_master;
                note(fmt::format(
                    "sentinel {}: {}", name_of(address),
                    answer.unknown_master ? unknown_master_reason(settings) : answer.error));
            } catch (const RedisError& error) {
                note(fmt::format("sentinel {}: {}", name_of(address), error.what()));
            }
        }
        if (!master && asked > 0 && unknown == asked)
            throw RedisError(fmt::format("no master through {}: {}", describe(endpoint), errors));
        if (master) {
            auto node = endpoint;
            node.host = master->host;
            node.port = master->port;
            try {
                // INFO cluster in the login's write: whether the scripts may skip their
                // slot guard there (Connection::plain_server).
                std::optional<Reply> info;
                auto connection = Connection::open_server(
                    node, {std::min(timeouts.connect, left()), timeouts.command}, &info);
                auto role = role_of(connection.command({"ROLE"}));
                if (role == "master") return connection;
                note(not_master_reason(node, role));
            } catch (const RedisError& error) {
                note(error.what());
            }
        }
        if (!errors.empty()) heard = errors;
        auto wait = jittered(delay);
        if (Clock::now() + wait >= deadline)
            throw RedisError(fmt::format("no master through {} within {}: {}", describe(endpoint),
                                         format_duration(timeouts.failover), heard));
        std::this_thread::sleep_for(wait);
        delay = std::min(retry_cap, delay * 2);
    }
}

std::shared_ptr<void> find_master_async(boost::asio::io_context& io, const Endpoint& endpoint,
                                        MasterFoundHandler done) {
    auto search = std::make_shared<Search>(io, endpoint, std::move(done));
    search->next();
    return search;
}

}  // namespace workq::redis
