#include "waiter.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstdio>
#include <map>

#include "cli/output.hpp"
#include "queue/client.hpp"
#include "queue/transitions.hpp"
#include "util/log.hpp"
#include "util/names.hpp"

namespace workq::enqueue {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t keys_per_wait = 256;  // BLPOP over at most this many jobs at a time
constexpr auto longest_block = std::chrono::seconds(5);

bool is_final(queue::JobState state) {
    return state == queue::JobState::succeeded || state == queue::JobState::dead ||
           state == queue::JobState::cancelled || state == queue::JobState::unknown;
}

}  // namespace

WaitOutcome wait_for_jobs(redis::Connection& connection, const queue::QueueKeys& keys,
                          const std::vector<std::string>& ids,
                          std::optional<std::chrono::milliseconds> timeout) {
    auto deadline = timeout ? std::optional(Clock::now() + *timeout) : std::nullopt;
    std::map<std::string, std::optional<queue::JobInfo>> finished;
    std::vector<std::string> pending(ids);
    std::size_t next_to_print = 0;
    bool any_failed = false;

    // Jobs this call did not create (--id, --unique) carry no notify flag yet: set it, then look
    // at the state, so that an end between the two is still seen.
    for (std::size_t start = 0; start < ids.size(); start += keys_per_wait) {
        auto end = std::min(ids.size(), start + keys_per_wait);
        std::vector<std::string> batch(ids.begin() + static_cast<long>(start),
                                       ids.begin() + static_cast<long>(end));
        queue::run(connection, queue::notify_call(keys, batch));
    }

    auto settle_and_print = [&] {
        while (next_to_print < ids.size()) {
            auto found = finished.find(ids[next_to_print]);
            if (found == finished.end()) break;
            const auto& info = found->second;
            if (info && info->state == queue::JobState::succeeded) {
                if (info->result) {
                    cli::write_stdout(*info->result);
                    cli::flush_stdout();
                }
            } else {
                any_failed = true;
                log::error(fmt::format(
                    "job {} ended {}{}", ids[next_to_print],
                    info ? queue::to_string(info->state) : "unknown",
                    info && !info->error.empty() ? ": " + printable(info->error, 300) : ""));
            }
            ++next_to_print;
        }
    };

    auto refresh = [&](const std::vector<std::string>& candidates) {
        for (const auto& id : candidates) {
            auto info = queue::parse_job_info(
                queue::run(connection, queue::job_info_call(keys, id, false)), id, keys.queue());
            if (!info || is_final(info->state)) finished[id] = std::move(info);
        }
        std::erase_if(pending, [&](const std::string& id) { return finished.contains(id); });
        settle_and_print();
    };

    refresh(pending);
    while (!pending.empty()) {
        auto block = std::chrono::duration_cast<std::chrono::milliseconds>(longest_block);
        if (deadline) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
            if (left.count() <= 0) return WaitOutcome::timed_out;
            block = std::min(block, left);
        }
        std::vector<std::string> args{"BLPOP"};
        for (std::size_t i = 0; i < pending.size() && i < keys_per_wait; ++i)
            args.push_back(keys.done(pending[i]));
        // BLPOP takes seconds; round up so that a short wait still blocks.
        args.push_back(fmt::format(
            "{:.3f}", std::max<double>(0.01, static_cast<double>(block.count()) / 1000.0)));
        connection.set_command_timeout(block + std::chrono::seconds(5));
        std::vector<std::string_view> view(args.begin(), args.end());
        auto reply = connection.command(view);
        connection.set_command_timeout(std::chrono::seconds(5));
        if (reply.is_error()) throw RedisError("waiting for jobs failed: " + reply.text);
        if (reply.is_nil()) {
            // Woke by the timeout: look again, in case a done list expired or was missed.
            refresh(std::vector<std::string>(
                pending.begin(),
                pending.begin() + static_cast<long>(std::min(pending.size(), keys_per_wait))));
            continue;
        }
        const auto& key = reply.at(0).as_string();
        auto done_prefix = keys.done("");
        refresh({key.substr(done_prefix.size())});
        connection.command({"DEL", key});
    }
    return any_failed ? WaitOutcome::some_failed : WaitOutcome::all_succeeded;
}

}  // namespace workq::enqueue
