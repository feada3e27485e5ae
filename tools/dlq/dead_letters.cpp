#include "dead_letters.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace workq::dlq {
namespace {
constexpr std::size_t page_size = 500;

std::optional<long long> number(const redis::Reply& reply) {
    if (reply.is_nil()) return std::nullopt;
    try {
        return std::stoll(reply.as_string());
    } catch (...) {
        return std::nullopt;
    }
}
}  // namespace

long long server_now_ms(redis::Connection& connection) {
    auto time = connection.call({"TIME"});
    return time.at(0).as_integer() * 1000 + time.at(1).as_integer() / 1000;
}

void each_dead_letter(redis::Connection& connection, const queue::QueueKeys& keys,
                      const Filter& filter, std::size_t limit,
                      const std::function<bool(const DeadLetter&)>& visit, LetterFields what) {
    const bool read_fields = what == LetterFields::all || filter.error_match;
    auto now = server_now_ms(connection);
    // Score bounds: died before (now - older_than), after (now - newer_than). Newest first.
    std::string max =
        filter.older_than ? fmt::format("({}", now - filter.older_than->count()) : "+inf";
    std::string min =
        filter.newer_than ? fmt::format("({}", now - filter.newer_than->count()) : "-inf";
    auto dead_key = keys.dead();
    std::size_t visited = 0;
    std::size_t skip = 0;  // letters at the boundary score already seen
    for (;;) {
        // Without a regex every letter of the page is visited: ask for no more than the limit
        // still allows, so that `ls --limit 10` costs the same for ten and for a million.
        std::size_t wanted = page_size;
        if (limit > 0 && !filter.error_match) wanted = std::min(page_size, limit - visited);
        auto page = connection.command({"ZREVRANGEBYSCORE", dead_key, max, min, "WITHSCORES",
                                        "LIMIT", std::to_string(skip), std::to_string(wanted)});
        queue::expect_type(page, dead_key, "zset");
        const auto& items = page.as_array();
        if (items.empty()) return;
        std::vector<std::pair<std::string, long long>> entries;
        for (std::size_t i = 0; i + 1 < items.size(); i += 2)
            entries.emplace_back(items[i].as_string(),
                                 static_cast<long long>(std::stod(items[i + 1].as_string())));
        if (read_fields)
            for (const auto& [id, died] : entries) {
                auto job_key = keys.job(id);
                connection.append(
                    {"HMGET", job_key, "attempts", "max", "error", "reason", "prio", "created"});
            }
        // Every reply of the page is read before the first visit: a visitor may use the
        // connection itself (export reads each page's records), and must find it idle.
        std::vector<DeadLetter> letters;
        letters.reserve(entries.size());
        for (const auto& [id, died] : entries) {
            DeadLetter letter;
            letter.id = id;
            letter.died_ms = died;
            if (!read_fields) {
                letters.push_back(std::move(letter));
                continue;
            }
            auto fields = connection.read_reply();
            if (fields.is_array() && fields.elements.size() == 6) {
                letter.attempts = number(fields.at(0)).value_or(0);
                letter.max_attempts = number(fields.at(1)).value_or(0);
                letter.error = fields.at(2).as_optional_string().value_or("");
                letter.reason = fields.at(3).as_optional_string().value_or("");
                letter.priority = number(fields.at(4)).value_or(0);
                letter.created_ms = number(fields.at(5));
            } else if (fields.is_error()) {
                // Listed, not skipped: `show` says more, and `rm` removes it.
                letter.reason = "damaged";
                letter.error = fmt::format(
                    "damaged: {} holds another type where workq keeps a hash", keys.job(id));
            }
            letters.push_back(std::move(letter));
        }
        for (const auto& letter : letters) {
            if (filter.error_match && !filter.error_match->search(letter.error) &&
                !filter.error_match->search(letter.reason))
                continue;
            if (!visit(letter)) return;
            if (limit > 0 && ++visited >= limit) return;
        }
        if (entries.size() < wanted) return;
        // Next page: from the last score seen, inclusive, skipping the letters of that score
        // already visited, so that many deaths in one millisecond are neither skipped nor
        // repeated.
        auto last = entries.back().second;
        std::size_t same = 0;
        for (auto it = entries.rbegin(); it != entries.rend() && it->second == last; ++it)
            ++same;
        skip = (std::to_string(last) == max) ? skip + same : same;
        max = std::to_string(last);
    }
}

}  // namespace workq::dlq
