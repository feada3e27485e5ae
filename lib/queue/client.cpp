#include "queue/client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace workq::queue {
namespace {

std::vector<std::string_view> views(const std::vector<std::string>& strings) {
    return {strings.begin(), strings.end()};
}

constexpr std::size_t lookup_batch = 100;

}  // namespace

void append(redis::Connection& connection, const ScriptCall& call) {
    auto keys = views(call.keys);
    auto args = views(call.args);
    connection.append_script(*call.script, keys, args);
}

redis::Reply run(redis::Connection& connection, const ScriptCall& call) {
    auto keys = views(call.keys);
    auto args = views(call.args);
    auto reply = connection.run_script(*call.script, keys, args);
    check_reply(call, reply);
    return reply;
}

std::vector<std::string> list_queues(redis::Connection& connection, const NamespaceKeys& keys) {
    auto key = keys.queues();
    auto reply = connection.command({"SMEMBERS", key});
    expect_type(reply, key, "set");
    std::vector<std::string> names;
    for (const auto& item : reply.as_array())
        names.push_back(item.as_string());
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<std::optional<JobInfo>> find_jobs(redis::Connection& connection,
                                              const NamespaceKeys& keys,
                                              std::span<const std::string> ids, bool details) {
    auto queues = list_queues(connection, keys);
    // Queues removed lately still hold their ended jobs' records until those expire.
    auto removed = connection.command({"ZRANGE", keys.removed(), "0", "-1"});
    if (removed.is_error()) throw RedisError("cannot list removed queues: " + removed.text);
    // The union, each queue once (a removed queue written again is in both lists): sorted and
    // deduplicated once, after the appends.
    for (const auto& item : removed.as_array())
        queues.push_back(item.as_string());
    std::sort(queues.begin(), queues.end());
    queues.erase(std::unique(queues.begin(), queues.end()), queues.end());
    std::vector<std::optional<JobInfo>> found(ids.size());
    if (queues.empty()) return found;
    for (std::size_t start = 0; start < ids.size(); start += lookup_batch) {
        auto end = std::min(ids.size(), start + lookup_batch);
        std::vector<ScriptCall> calls;
        for (auto i = start; i < end; ++i)
            for (const auto& queue : queues) {
                calls.push_back(job_info_call(QueueKeys(keys.name(), queue), ids[i], details));
                append(connection, calls.back());
            }
        auto replies = connection.read_script_replies();
        std::size_t r = 0;
        for (auto i = start; i < end; ++i)
            for (const auto& queue : queues) {
                check_reply(calls[r], replies[r]);
                if (!found[i]) found[i] = parse_job_info(replies[r], ids[i], queue);
                ++r;
            }
    }
    return found;
}

std::vector<std::string> queues_holding(redis::Connection& connection, const NamespaceKeys& keys,
                                        std::span<const std::string> ids, std::string_view except) {
    std::vector<std::string> holders(ids.size());
    auto queues = list_queues(connection, keys);
    std::erase(queues, std::string(except));
    if (queues.empty() || ids.empty()) return holders;
    for (const auto& id : ids)
        for (const auto& queue : queues) {
            auto key = QueueKeys(keys.name(), queue).job(id);
            connection.append({"EXISTS", key});
        }
    for (std::size_t i = 0; i < ids.size(); ++i)
        for (const auto& queue : queues) {
            auto reply = connection.read_reply();
            if (reply.is_error()) throw RedisError("cannot look up job ids: " + reply.text);
            if (holders[i].empty() && reply.as_integer() == 1) holders[i] = queue;
        }
    return holders;
}

std::optional<JobInfo> find_job(redis::Connection& connection, const NamespaceKeys& keys,
                                std::string_view id, bool details) {
    std::vector<std::string> ids{std::string(id)};
    return std::move(find_jobs(connection, keys, ids, details).front());
}

std::vector<IdPlace> place_ids(redis::Connection& connection, const NamespaceKeys& keys,
                               std::span<const std::string> ids, std::string_view queue) {
    using Clock = std::chrono::steady_clock;
    // A reservation lives 15 s (lib/lua/common/helpers.lua); a caller making the job within it
    // is waited for, one that died leaves it to lapse.
    constexpr auto wait_limit = std::chrono::seconds(35);
    constexpr auto poll_interval = std::chrono::milliseconds(50);
    const auto give_up = Clock::now() + wait_limit;
    std::vector<IdPlace> places(ids.size());
    std::vector<std::size_t> pending(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i)
        pending[i] = i;
    while (!pending.empty()) {
        std::vector<std::string> asked;
        for (auto i : pending)
            asked.push_back(ids[i]);
        auto reservations = parse_reserve_id(run(connection, reserve_id_call(keys, asked, queue)));
        // Ours: the job may be made here unless another queue already holds it (a job made
        // under a reservation that has lapsed since).
        std::vector<std::string> ours;
        std::vector<std::size_t> ours_at;
        std::vector<std::size_t> foreign;  // indexes into `pending`
        for (std::size_t k = 0; k < pending.size(); ++k) {
            if (reservations.at(k).held) {
                ours.push_back(asked[k]);
                ours_at.push_back(k);
            } else {
                foreign.push_back(k);
            }
        }
        std::vector<std::string> released;
        if (!ours.empty()) {
            auto holders = queues_holding(connection, keys, ours, queue);
            for (std::size_t j = 0; j < ours.size(); ++j) {
                auto& place = places[pending[ours_at[j]]];
                if (holders[j].empty()) {
                    place = {std::string(queue), reservations[ours_at[j]].deadline_ms};
                } else {
                    place = {holders[j], std::nullopt};
                    released.push_back(ours[j]);
                }
            }
        }
        if (!released.empty()) run(connection, release_id_call(keys, released, queue));
        // Another queue's: done when its job is there; else its maker is still at work.
        for (auto k : foreign)
            connection.append(
                {"EXISTS", QueueKeys(keys.name(), reservations[k].holder).job(asked[k])});
        std::vector<std::size_t> still;
        for (auto k : foreign) {
            auto reply = connection.read_reply();
            if (reply.is_error()) throw RedisError("cannot look up job ids: " + reply.text);
            if (reply.as_integer() == 1)
                places[pending[k]] = {reservations[k].holder, std::nullopt};
            else
                still.push_back(pending[k]);
        }
        pending = std::move(still);
        if (pending.empty()) break;
        if (Clock::now() > give_up)
            throw Error(fmt::format(
                "job id {} is reserved for queue {} by another caller that has not made the job "
                "there for {} s; nothing was made, try again",
                ids[pending.front()], reservations[foreign.front()].holder,
                std::chrono::duration_cast<std::chrono::seconds>(wait_limit).count()));
        std::this_thread::sleep_for(poll_interval);
    }
    return places;
}

PlacedJob enqueue_with_id(redis::Connection& connection, const NamespaceKeys& namespace_keys,
                          const QueueKeys& keys, EnqueueOptions options, const NewJob& job) {
    // The queue is registered before the job is made: a later caller looking for the id in
    // every queue (place_ids) must see this one.
    auto registered = connection.command({"SADD", namespace_keys.queues(), keys.queue()});
    if (registered.is_error()) throw RedisError("cannot register the queue: " + registered.text);
    bool created_queue = registered.type == redis::Reply::Type::integer && registered.integer == 1;
    const std::vector<std::string> ids{std::string(job.id)};
    options.caller_ids = true;
    // Each round renews the reservation; one lapses only when the enqueue reached the server
    // 13 s after it: a few rounds are plenty unless the server is that slow every time.
    constexpr int rounds = 3;
    for (int round = 0; round < rounds; ++round) {
        auto place = place_ids(connection, namespace_keys, ids, keys.queue()).at(0);
        if (!place.fence_ms) return {EnqueueStatus::existing, place.queue, created_queue};
        options.id_fence_ms = place.fence_ms;
        std::vector<NewJob> one{job};
        auto result = parse_enqueue(run(connection, enqueue_call(keys, options, one)), one).at(0);
        if (result.status != EnqueueStatus::reservation_lapsed)
            return {result.status, keys.queue(), created_queue};
    }
    throw Error(
        fmt::format("job {} was not made: its id's reservation lapsed {} times before "
                    "the server ran the enqueue (is the server overloaded?)",
                    job.id, rounds));
}

}  // namespace workq::queue
