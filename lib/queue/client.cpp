#include "queue/client.hpp"

#include <algorithm>

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
    if (reply.is_error()) throw RedisError("cannot list queues: " + reply.text);
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

}  // namespace workq::queue
