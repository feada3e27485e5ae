#include "queue/backoff.hpp"

#include <algorithm>
#include <cmath>

#include "util/duration.hpp"

namespace workq::queue {

std::optional<Backoff> parse_backoff(std::string_view text) {
    Backoff backoff;
    auto comma = text.find(',');
    auto base = parse_duration(text.substr(0, comma));
    if (!base) return std::nullopt;
    backoff.base = *base;
    if (comma != std::string_view::npos) {
        auto cap = parse_duration(text.substr(comma + 1));
        if (!cap || *cap < *base) return std::nullopt;
        backoff.cap = *cap;
    } else {
        backoff.cap = std::max(backoff.cap, backoff.base);
    }
    return backoff;
}

std::chrono::milliseconds retry_delay(const Backoff& backoff, long long attempt,
                                      double unit_random) {
    double exponent = static_cast<double>(std::clamp<long long>(attempt - 1, 0, 62));
    double raw = static_cast<double>(backoff.base.count()) * std::pow(2.0, exponent);
    double jittered = raw * (0.8 + 0.4 * std::clamp(unit_random, 0.0, 1.0));
    double capped = std::min(jittered, static_cast<double>(backoff.cap.count()));
    return std::chrono::milliseconds(static_cast<long long>(std::llround(capped)));
}

}  // namespace workq::queue
