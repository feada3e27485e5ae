// Reading a queue's dead letters page by page, newest first, with the filters of workq-dlq
// (--older-than, --newer-than, --error-match), in bounded memory whatever their number.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "queue/keys.hpp"
#include "queue/transitions.hpp"
#include "redis/connection.hpp"
#include "util/error_pattern.hpp"

namespace workq::dlq {

struct DeadLetter {
    std::string id;
    long long died_ms = 0;
    long long attempts = 0, max_attempts = 0;
    std::string error, reason;
    long long priority = 0;
    std::optional<long long> created_ms;
};

struct Filter {
    std::optional<queue::Millis> older_than, newer_than;
    std::optional<ErrorPattern> error_match;
    std::string error_pattern;  // as given, for messages
    bool any() const { return older_than || newer_than || error_match; }
};

// What a visitor reads of each letter: every field of DeadLetter, or only its id and time of
// death (export and the selections of requeue/rm read the records themselves, or not at all).
enum class LetterFields { all, id_only };

// Calls `visit` for each dead letter that passes the filter, newest first, until it returns
// false or `limit` (0: no limit) were visited. One ZREVRANGEBYSCORE per page of 500, whatever
// the total, and one pipelined HMGET per letter of the page unless `fields` is id_only and no
// --error-match needs the errors.
void each_dead_letter(redis::Connection& connection, const queue::QueueKeys& keys,
                      const Filter& filter, std::size_t limit,
                      const std::function<bool(const DeadLetter&)>& visit,
                      LetterFields fields = LetterFields::all);

// The server's time, in epoch ms (filters are relative to it, not to our clock).
long long server_now_ms(redis::Connection& connection);

}  // namespace workq::dlq
