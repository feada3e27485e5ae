#include "redis/cluster.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <random>

#include "util/errors.hpp"
#include "util/names.hpp"

namespace workq::redis {
namespace {

// Commands that take no key, as the tools send them: they go to any master.
constexpr std::string_view keyless_commands[] = {
    "ASKING", "AUTH",     "CLIENT", "CLUSTER", "COMMAND", "CONFIG",  "DBSIZE",
    "ECHO",   "FUNCTION", "HELLO",  "INFO",    "PING",    "QUIT",    "READONLY",
    "ROLE",   "SCRIPT",   "SELECT", "TIME",    "WAIT",    "SENTINEL"};

bool same_word(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) ==
                      std::toupper(static_cast<unsigned char>(y));
           });
}

template <typename Args>
std::optional<std::string_view> first_key(const Args& args) {
    if (args.size() < 2) return std::nullopt;
    std::string_view name = args[0];
    if (same_word(name, "EVAL") || same_word(name, "EVALSHA") || same_word(name, "EVAL_RO") ||
        same_word(name, "EVALSHA_RO") || same_word(name, "FCALL")) {
        if (args.size() < 4) return std::nullopt;
        std::string_view count = args[2];
        long long keys = 0;
        auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), keys);
        if (ec != std::errc{} || keys <= 0) return std::nullopt;
        return std::string_view(args[3]);
    }
    for (auto keyless : keyless_commands)
        if (same_word(name, keyless)) return std::nullopt;
    return std::string_view(args[1]);
}

// "host:port" as MOVED and ASK write it (the port after the last ':', for IPv6 addresses).
std::optional<HostPort> parse_address(std::string_view text, const HostPort& asked) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    HostPort address{std::string(text.substr(0, colon)), 0};
    auto port = text.substr(colon + 1);
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), address.port);
    if (ec != std::errc{} || end != port.data() + port.size() || address.port <= 0 ||
        address.port > 65535)
        return std::nullopt;
    if (address.host.empty() || address.host == "?") address.host = asked.host;
    return address;
}

}  // namespace

std::uint16_t crc16(std::string_view data) {
    std::uint16_t crc = 0;
    for (unsigned char byte : data) {
        crc ^= static_cast<std::uint16_t>(byte << 8);
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                 : static_cast<std::uint16_t>(crc << 1);
    }
    return crc;
}

int key_slot(std::string_view key) {
    if (auto open = key.find('{'); open != std::string_view::npos) {
        auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) % cluster_slot_count;
}

const HostPort* SlotMap::master_of(int slot) const {
    if (slot < 0 || slot >= cluster_slot_count) return nullptr;
    auto index = owner[static_cast<std::size_t>(slot)];
    return index < 0 ? nullptr : &masters[static_cast<std::size_t>(index)];
}

void SlotMap::assign(int slot, const HostPort& master) {
    if (slot < 0 || slot >= cluster_slot_count) return;
    auto found = std::find(masters.begin(), masters.end(), master);
    if (found == masters.end()) found = masters.insert(masters.end(), master);
    owner[static_cast<std::size_t>(slot)] = static_cast<std::int16_t>(found - masters.begin());
}

int SlotMap::unserved() const {
    return static_cast<int>(std::count(owner.begin(), owner.end(), std::int16_t{-1}));
}

SlotMap parse_cluster_slots(const Reply& reply, const HostPort& asked) {
    auto bad = [&](std::string_view why) {
        return RedisError(fmt::format("unexpected reply to CLUSTER SLOTS from {} ({}): {}",
                                      host_port(asked.host, asked.port), why,
                                      printable(reply.describe(), 200)));
    };
    if (!reply.is_array()) throw bad("not an array");
    SlotMap map;
    for (const auto& range : reply.elements) {
        if (!range.is_array() || range.elements.size() < 3) throw bad("a range without a master");
        auto first = range.elements[0].as_integer();
        auto last = range.elements[1].as_integer();
        const auto& node = range.elements[2];
        if (first < 0 || last >= cluster_slot_count || first > last || !node.is_array() ||
            node.elements.size() < 2)
            throw bad("a malformed range");
        HostPort master{node.elements[0].is_string() ? node.elements[0].as_string() : "",
                        static_cast<int>(node.elements[1].as_integer())};
        if (master.host.empty() || master.host == "?") master.host = asked.host;
        for (auto slot = first; slot <= last; ++slot)
            map.assign(static_cast<int>(slot), master);
    }
    return map;
}

std::optional<std::string_view> routing_key(std::span<const std::string_view> args) {
    return first_key(args);
}

std::optional<std::string_view> routing_key(std::span<const std::string> args) {
    return first_key(args);
}

Redirect parse_redirect(const Reply& reply, const HostPort& asked) {
    Redirect redirect;
    if (!reply.is_error()) return redirect;
    std::string_view text = reply.text;
    if (text.starts_with("TRYAGAIN")) {
        redirect.kind = Redirect::Kind::try_again;
        return redirect;
    }
    // CLUSTERDOWN The cluster is down / Hash slot not served; also the MASTERDOWN a replica
    // says while its master is gone is not ours (we talk to masters only).
    if (text.starts_with("CLUSTERDOWN")) {
        redirect.kind = Redirect::Kind::cluster_down;
        return redirect;
    }
    bool moved = text.starts_with("MOVED ");
    if (!moved && !text.starts_with("ASK ")) return redirect;
    text.remove_prefix(moved ? 6 : 4);
    auto space = text.find(' ');
    if (space == std::string_view::npos) return redirect;
    int slot = -1;
    auto slot_text = text.substr(0, space);
    auto [end, ec] = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot);
    if (ec != std::errc{} || slot < 0 || slot >= cluster_slot_count) return redirect;
    auto target = parse_address(text.substr(space + 1), asked);
    if (!target) return redirect;
    redirect.kind = moved ? Redirect::Kind::moved : Redirect::Kind::ask;
    redirect.slot = slot;
    redirect.target = std::move(*target);
    return redirect;
}

namespace {
bool info_has_line(const Reply& info, std::string_view wanted) {
    if (!info.is_string()) return false;
    std::string_view text = info.text;
    for (std::size_t start = 0; start < text.size();) {
        auto end = std::min(text.find('\n', start), text.size());
        auto line = text.substr(start, end - start);
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (line == wanted) return true;
        start = end + 1;
    }
    return false;
}
}  // namespace

bool cluster_enabled(const Reply& info) {
    return info_has_line(info, "cluster_enabled:1");
}

bool cluster_disabled(const Reply& info) {
    return info_has_line(info, "cluster_enabled:0");
}

std::chrono::milliseconds cluster_retry_delay(int attempt) {
    static std::minstd_rand random(std::random_device{}());
    auto base = std::min<long long>(1000, 50LL << std::min(attempt, 5));
    std::uniform_real_distribution<double> factor(0.5, 1.5);
    return std::chrono::milliseconds(
        static_cast<long long>(static_cast<double>(base) * factor(random)));
}

Endpoint cluster_node(const Endpoint& endpoint, const HostPort& node) {
    Endpoint result = endpoint;
    result.kind = Endpoint::Kind::tcp;
    result.host = node.host;
    result.port = node.port;
    result.database = 0;
    result.cluster.reset();
    return result;
}

}  // namespace workq::redis
