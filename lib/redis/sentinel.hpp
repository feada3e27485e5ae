// Redis Sentinel (CONTRACT.md section 10): finding the master of a redis+sentinel:// endpoint.
// The sentinels are asked in turn (SENTINEL get-master-addr-by-name), the one that answered last
// first; a server is used only after it answers ROLE as master, since the sentinels' word lags
// behind a failover, and an old master restarted with its old configuration claims to be master
// until they reconfigure it.
//
// The connections to the sentinels are built from the same endpoint as the master's (the same
// transport settings: rediss+sentinel:// is TLS to both), with the sentinel's
// address, no database and the sentinel password.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "redis/connection.hpp"
#include "redis/reply.hpp"
#include "redis/url.hpp"

namespace workq::redis {

// A sentinel that does not answer within this is passed over for the next: it is a small
// process next to the servers, and the others may know the answer (a fraction of the 10 s a
// one-shot tool has).
inline constexpr std::chrono::milliseconds sentinel_timeout{1000};

// The endpoint for talking to one sentinel of `endpoint` (a Sentinel endpoint).
Endpoint sentinel_node(const Endpoint& endpoint, const HostPort& sentinel);

// The sentinels of `settings` in the order to ask them: the one that answered last in this
// process first, then the URL's order.
std::vector<HostPort> sentinels_in_turn(const SentinelSettings& settings);

// Records that `sentinel` answered: it is asked first next time.
void remember_answer(const SentinelSettings& settings, const HostPort& sentinel);

// What one sentinel said about the master.
struct SentinelAnswer {
    std::optional<HostPort> master;  // where the master is
    bool unknown_master = false;     // the sentinel watches no master of that name
    std::string error;               // neither: what was wrong with the reply
};

// Reads the reply to SENTINEL get-master-addr-by-name: [host, port], nil, or an error.
SentinelAnswer parse_master_address(const Reply& reply);

// The role a server names in its reply to ROLE ("master", "slave", "sentinel"), or the reply
// described when it has not the shape of one.
std::string role_of(const Reply& reply);

// Why a server that answered ROLE with `role` is not used.
std::string not_master_reason(const Endpoint& node, const std::string& role);

// True for the error replies that say the server is not (or no longer) the master: READONLY (a
// write sent to a replica) and UNBLOCKED (a blocking command cut off by a change of role).
bool is_failover_error(const Reply& reply);

// Blocking: finds the master and connects to it (authenticated, database selected, ROLE
// checked). Asks again with jittered backoff, while no sentinel answers or the server they name
// is not yet master, until timeouts.failover has passed; then throws RedisError with what each
// sentinel said. Throws at once when every sentinel that answered watches no master of that
// name. The connection's endpoint() names the master's address.
Connection connect_to_master(const Endpoint& endpoint, Timeouts timeouts);

// Asynchronous: asks the sentinels in turn, once each, each within sentinel_timeout, and calls
// `done` (on the io_context, never inside this call) with the master's address, or nullopt and
// the reasons. Destroying the returned handle abandons the search (`done` is then not called).
using MasterFoundHandler =
    std::function<void(std::optional<HostPort> master, const std::string& error)>;
std::shared_ptr<void> find_master_async(boost::asio::io_context& io, const Endpoint& endpoint,
                                        MasterFoundHandler done);

}  // namespace workq::redis
