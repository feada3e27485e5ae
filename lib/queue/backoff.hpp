// How long a failed job waits before its next attempt: about BASE * 2^(attempt-1), with jitter
// so that jobs that failed together do not come back together, never more than CAP.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace workq::queue {

struct Backoff {
    std::chrono::milliseconds base{10'000};
    std::chrono::milliseconds cap{3'600'000};
};

// Parses "BASE[,CAP]" ("10s,1h", "500ms"); nullopt when malformed or BASE > CAP.
std::optional<Backoff> parse_backoff(std::string_view text);

// The delay after failed attempt number `attempt` (1 for the first). `unit_random` in [0, 1)
// picks the jitter: the result lies in [0.8, 1.2) x BASE * 2^(attempt-1), then capped.
std::chrono::milliseconds retry_delay(const Backoff& backoff, long long attempt,
                                      double unit_random);

}  // namespace workq::queue
