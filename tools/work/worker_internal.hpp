// Constants and helpers shared by the Worker's source files (worker*.cpp), and nothing else.
#pragma once

#include <csignal>
#include <cstddef>
#include <string>
#include <string_view>

#include "handler_run.hpp"

namespace workq::work::detail {

// Claims on their way at once: a second one goes out when slots free while the first is on its
// way (a busy worker keeps Redis busy); more would only split the same free slots thinner.
inline constexpr std::size_t max_claims_in_flight = 2;
// The fewest jobs a second claim asks for (one alone always goes): slots that free while a
// claim is on its way go together in the next one, not one call each. Each call costs the
// server a fixed part (its reads, its reply) beside its jobs' own: at -c 10 one of every two
// claims asked for a single job (bench/README.md, "Rounds that fill").
inline std::size_t second_claim_least(long long concurrency) {
    return concurrency >= 8 ? static_cast<std::size_t>(concurrency / 4) : 1;
}
// How long an idle worker blocks on the server before looking again (and the ceiling on its
// idle command rate: about one BLPOP and one claim per this interval).
inline constexpr Millis idle_block{5000};
// After a handler could not be started for want of descriptors or processes: how long the
// worker claims nothing before trying again.
inline constexpr Millis shortage_pause{1000};
// --burst: how often a queue whose concurrency limit holds it back is looked at again (a burst
// does not wait on wake-ups).
inline constexpr Millis burst_concurrency_look{1000};
inline constexpr Millis reconnect_first{100};
inline constexpr Millis reconnect_cap{5000};
inline constexpr Millis blocking_retry{
    1000};  // after the waiting (BLPOP) connection failed to open
// A claim link (a cluster) the server keeps refusing is asked again after blocking_retry,
// doubling up to this (a slot that moves answers TRYAGAIN until the move ends).
inline constexpr Millis max_link_pause{8000};
inline constexpr Millis settle_allowance{5000};  // after the shutdown budget, time left to report
inline constexpr Millis hook_timeout{60000};
inline constexpr Millis unregister_timeout{2000};
// The breaker's cooldown doubles on each trip before a success, up to this (or the configured
// cooldown, when that is longer).
inline constexpr Millis max_failure_cooldown{600'000};

// The signals the loop acts on (as events, through asio's self-pipe). SIGUSR1 and SIGUSR2 are
// caught too: their default disposition kills the worker without a drain.
inline constexpr int watched_signals[] = {SIGTERM, SIGINT,  SIGHUP,  SIGTSTP,
                                          SIGCONT, SIGCHLD, SIGUSR1, SIGUSR2};

// A uniform random number in [0, 1): the jitter of retry delays.
double unit_random();

}  // namespace workq::work::detail
