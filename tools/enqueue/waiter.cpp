#include "waiter.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "cli/output.hpp"
#include "queue/client.hpp"
#include "queue/registry.hpp"
#include "queue/transitions.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"
#include "util/names.hpp"

namespace workq::enqueue {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t keys_per_wait = 256;  // BLPOP over at most this many jobs at a time
constexpr auto longest_block = std::chrono::seconds(5);
// After this long with jobs pending, say so when no live worker serves the queue: a wait that
// would otherwise last for ever without a word.
constexpr auto worker_check_after = std::chrono::seconds(3);
// A server that went away (a restart) is asked again for this long before the wait gives up:
// a restart with its append-only file takes a few seconds; the jobs live on meanwhile.
constexpr auto reconnect_for = std::chrono::seconds(30);
constexpr auto reconnect_pause = std::chrono::milliseconds(250);

bool is_final(queue::JobState state) {
    return state == queue::JobState::succeeded || state == queue::JobState::dead ||
           state == queue::JobState::cancelled || state == queue::JobState::unknown;
}

// The ids, for a message: a few, then how many more.
std::string name_ids(const std::vector<std::string>& ids) {
    constexpr std::size_t shown = 10;
    std::string text;
    for (std::size_t i = 0; i < ids.size() && i < shown; ++i)
        text += (i ? " " : "") + ids[i];
    if (ids.size() > shown) text += fmt::format(" and {} more", ids.size() - shown);
    return text;
}

// Whether any live worker serves `queue`, by the registry.
bool served(redis::Connection& connection, const queue::QueueKeys& keys,
            const std::string& namespace_name) {
    long long now = 0;
    for (const auto& worker :
         queue::list_workers(connection, queue::NamespaceKeys(namespace_name), now))
        if (worker.live && std::find(worker.queues.begin(), worker.queues.end(), keys.queue()) !=
                               worker.queues.end())
            return true;
    return false;
}

}  // namespace

WaitOutcome wait_for_jobs(redis::Connection& connection, const queue::QueueKeys& keys,
                          const std::string& namespace_name, const std::vector<std::string>& ids,
                          std::optional<std::chrono::milliseconds> timeout, Separator separator) {
    auto started = Clock::now();
    auto deadline = timeout ? std::optional(started + *timeout) : std::nullopt;
    std::map<std::string, std::optional<queue::JobInfo>> finished;
    std::vector<std::string> pending(ids);
    std::size_t next_to_print = 0;
    bool any_failed = false;
    bool workers_checked = false;
    std::set<std::string> lost_results;  // succeeded, but the record and result are gone
    const char terminator = separator == Separator::nul ? '\0' : '\n';

    // Jobs this call did not create (--id, --unique) carry no notify flag yet: set it, then look
    // at the state, so that an end between the two is still seen.
    auto ask_to_notify = [&] {
        for (std::size_t start = 0; start < pending.size(); start += keys_per_wait) {
            auto end = std::min(pending.size(), start + keys_per_wait);
            std::vector<std::string> batch(pending.begin() + static_cast<long>(start),
                                           pending.begin() + static_cast<long>(end));
            queue::run(connection, queue::notify_call(keys, batch));
        }
    };

    // Each job's record on stdout: its result, ended by the separator unless it ends with one
    // already, so that results never run together; an empty record for a job that did not
    // succeed (its place stays marked), with a line on stderr naming it.
    auto settle_and_print = [&] {
        while (next_to_print < ids.size()) {
            auto found = finished.find(ids[next_to_print]);
            if (found == finished.end()) break;
            const auto& info = found->second;
            std::string record;
            if (info && info->state == queue::JobState::succeeded) {
                if (info->result) record = *info->result;
                if (lost_results.contains(ids[next_to_print]))
                    log::warn(
                        fmt::format("job {} succeeded; its result was not kept (the "
                                    "worker's --result-ttl is 0)",
                                    ids[next_to_print]));
            } else {
                any_failed = true;
                // A handler's error text ends with its last newline: not part of the message.
                std::string_view error = info ? std::string_view(info->error) : std::string_view{};
                while (!error.empty() && (error.back() == '\n' || error.back() == '\r'))
                    error.remove_suffix(1);
                log::error(fmt::format("job {} ended {}{}; its result is an empty record",
                                       ids[next_to_print],
                                       info ? queue::to_string(info->state) : "unknown",
                                       !error.empty() ? ": " + printable(error, 300) : ""));
            }
            if (record.empty() || record.back() != terminator) record += terminator;
            cli::write_stdout(record);
            cli::flush_stdout();
            ++next_to_print;
        }
    };

    // A job whose record is gone may still have said how it ended in its done list: the
    // final state, then the result when the record was not kept (--result-ttl 0). `popped` is
    // the first element when BLPOP took it.
    auto from_done_list =
        [&](const std::string& id,
            const std::optional<std::string>& popped) -> std::optional<queue::JobInfo> {
        auto rest = connection.command({"LRANGE", keys.done(id), "0", "-1"});
        std::vector<std::string> items;
        if (popped) items.push_back(*popped);
        if (!rest.is_error())  // a done list of another type says nothing (README, "Damaged data")
            for (const auto& item : rest.as_array())
                items.push_back(item.as_string());
        if (items.empty() || items[0] != "succeeded") return std::nullopt;
        queue::JobInfo info;
        info.id = id;
        info.queue = keys.queue();
        info.state = queue::JobState::succeeded;
        if (items.size() > 1)
            info.result = items[1];
        else
            lost_results.insert(id);
        return info;
    };

    auto refresh = [&](const std::vector<std::string>& candidates,
                       const std::optional<std::string>& popped = std::nullopt) {
        for (const auto& id : candidates) {
            auto info = queue::parse_job_info(
                queue::run(connection, queue::job_info_call(keys, id, false)), id, keys.queue());
            if (!info) info = from_done_list(id, popped);
            if (!info || is_final(info->state)) finished[id] = std::move(info);
        }
        std::erase_if(pending, [&](const std::string& id) { return finished.contains(id); });
        settle_and_print();
    };

    // One step of the wait: blocks on the done lists of the pending jobs up to 5 s. Returns
    // false when the deadline passed.
    bool done_list_damaged = false;
    auto step = [&]() -> bool {
        auto block = std::chrono::duration_cast<std::chrono::milliseconds>(longest_block);
        if (deadline) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
            if (left.count() <= 0) return false;
            block = std::min(block, left);
        }
        if (!workers_checked && Clock::now() - started >= worker_check_after) {
            workers_checked = true;
            if (!served(connection, keys, namespace_name))
                log::warn(
                    fmt::format("no live worker serves queue {}: waiting until one runs the job(s) "
                                "(workq-work {} -- COMMAND)",
                                keys.queue(), keys.queue()));
        } else if (!workers_checked) {
            block = std::min(block, std::chrono::duration_cast<std::chrono::milliseconds>(
                                        worker_check_after - (Clock::now() - started)) +
                                        std::chrono::milliseconds(10));
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
        if (reply.is_error() && reply.text.starts_with("WRONGTYPE")) {
            // A done list of another type (README, "Damaged data"): this round looks at the
            // records instead of waiting on the lists, and sleeps a second (bounded polling
            // until the job that ends replaces the list).
            if (!done_list_damaged) {
                done_list_damaged = true;
                log::warn(
                    fmt::format("a done list of queue {} holds another type; looking at the "
                                "jobs every second instead",
                                keys.queue()));
            }
            refresh(std::vector<std::string>(
                pending.begin(),
                pending.begin() + static_cast<long>(std::min(pending.size(), keys_per_wait))));
            if (!pending.empty())
                std::this_thread::sleep_for(
                    std::min<std::chrono::milliseconds>(block, std::chrono::seconds(1)));
            return true;
        }
        if (reply.is_error()) throw RedisError("waiting for jobs failed: " + reply.text);
        if (reply.is_nil()) {
            // Woke by the timeout: look again, in case a done list expired or was missed.
            refresh(std::vector<std::string>(
                pending.begin(),
                pending.begin() + static_cast<long>(std::min(pending.size(), keys_per_wait))));
            return true;
        }
        const auto& key = reply.at(0).as_string();
        auto done_prefix = keys.done("");
        refresh({key.substr(done_prefix.size())}, reply.at(1).as_string());
        connection.command({"DEL", key});
        return true;
    };

    // The server went away (a restart, a failover): connect again for a while and carry on;
    // the jobs live on meanwhile. Gives up with every pending id named, at error level, so
    // that even with -q each enqueued job can be found again.
    auto reconnect = [&](const RedisError& error) {
        log::warn(
            fmt::format("lost the server while waiting ({}); connecting again", error.what()));
        auto give_up = Clock::now() + reconnect_for;
        for (;;) {
            std::this_thread::sleep_for(reconnect_pause);
            try {
                connection = redis::Connection::open(connection.endpoint());
                ask_to_notify();
                refresh(pending);
                log::info("connected again; still waiting");
                return;
            } catch (const RedisError& again) {
                if (Clock::now() >= give_up || (deadline && Clock::now() >= *deadline))
                    throw RedisError(fmt::format(
                        "{}; the jobs not reported are enqueued and may still run: {} (see "
                        "workq-status job ID)",
                        again.what(), name_ids(pending)));
            }
        }
    };

    try {
        ask_to_notify();
        refresh(pending);
    } catch (const RedisError& error) {
        reconnect(error);
    }
    while (!pending.empty()) {
        try {
            if (!step()) {
                log::error(
                    fmt::format("--wait-timeout passed; still waiting for: {}", name_ids(pending)));
                return WaitOutcome::timed_out;
            }
        } catch (const RedisError& error) {
            reconnect(error);
        }
    }
    return any_failed ? WaitOutcome::some_failed : WaitOutcome::all_succeeded;
}

}  // namespace workq::enqueue
