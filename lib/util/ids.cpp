#include "util/ids.hpp"

#include <chrono>
#include <random>

namespace workq {
namespace {

constexpr char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford, lowercase

std::mt19937_64& generator() {
    thread_local std::mt19937_64 engine = [] {
        std::random_device device;
        std::seed_seq seed{device(), device(), device(), device()};
        return std::mt19937_64(seed);
    }();
    return engine;
}

}  // namespace

std::string random_token(std::size_t length) {
    std::string out(length, '0');
    auto& engine = generator();
    std::uint64_t bits = 0;
    int available = 0;
    for (auto& c : out) {
        if (available < 5) {
            bits = engine();
            available = 64;
        }
        c = alphabet[bits & 31];
        bits >>= 5;
        available -= 5;
    }
    return out;
}

std::string new_job_id() {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    std::string id(10, '0');
    auto value = static_cast<std::uint64_t>(now);
    for (int i = 9; i >= 0; --i) {
        id[static_cast<std::size_t>(i)] = alphabet[value & 31];
        value >>= 5;
    }
    return id + random_token(8);
}

}  // namespace workq
