#include "queue/registry.hpp"

#include <sstream>

#include "queue/scripts.hpp"
#include "queue/transitions.hpp"

namespace workq::queue {

namespace {

ScriptCall registry_call(const NamespaceKeys& keys, std::string_view worker_id,
                         const Fields& fields, std::string_view mode,
                         std::chrono::milliseconds keep) {
    ScriptCall call;
    call.script = &script("heartbeat");
    call.keys = {keys.workers(), keys.worker(worker_id), keys.exited()};
    call.args = {std::string(worker_id), std::to_string(lost_after.count()),
                 std::to_string(forget_after.count()), std::string(mode),
                 std::to_string(keep.count())};
    for (const auto& [field, value] : fields) {
        call.args.push_back(field);
        call.args.push_back(value);
    }
    return call;
}

}  // namespace

ScriptCall heartbeat_call(const NamespaceKeys& keys, std::string_view worker_id,
                          const Fields& fields) {
    return registry_call(keys, worker_id, fields, "beat", std::chrono::milliseconds(0));
}

ScriptCall exit_call(const NamespaceKeys& keys, std::string_view worker_id, const Fields& fields,
                     std::chrono::milliseconds keep) {
    return registry_call(keys, worker_id, fields, "exit", keep);
}

HeartbeatResult parse_heartbeat(const redis::Reply& reply) {
    HeartbeatResult result;
    const auto& items = reply.as_array();
    if (items.empty()) return result;
    result.server_now_ms = items[0].as_integer();
    for (std::size_t i = 1; i < items.size(); ++i)
        result.lost_workers.push_back(items[i].as_string());
    return result;
}

std::vector<WorkerRecord> list_workers(redis::Connection& connection, const NamespaceKeys& keys,
                                       long long& server_now_ms, std::string* damage) {
    auto workers_key = keys.workers(), exited_key = keys.exited();
    connection.append({"TIME"});
    connection.append({"ZRANGE", workers_key, "0", "-1"});
    connection.append({"ZRANGE", exited_key, "0", "-1"});
    auto time = connection.read_reply();
    auto ids = connection.read_reply();
    auto exited_ids = connection.read_reply();
    server_now_ms = time.at(0).as_integer() * 1000 + time.at(1).as_integer() / 1000;
    // A damaged key is noted (or thrown) and what can be read is still listed.
    auto damaged = [&](const redis::Reply& reply, const std::string& key,
                       std::string_view kind) -> bool {
        try {
            expect_type(reply, key, kind);
            return false;
        } catch (const QueueDamagedError& error) {
            if (!damage) throw;
            if (damage->empty()) *damage = error.damage;
            return true;
        }
    };
    std::vector<std::pair<std::string, bool>> id_list;  // id, exited
    if (!damaged(ids, workers_key, "zset"))
        for (const auto& id : ids.as_array())
            id_list.emplace_back(id.as_string(), false);
    if (!damaged(exited_ids, exited_key, "zset"))
        for (const auto& id : exited_ids.as_array())
            id_list.emplace_back(id.as_string(), true);
    for (const auto& entry : id_list)
        connection.append({"HGETALL", keys.worker(entry.first)});
    std::vector<WorkerRecord> records;
    for (const auto& [id, exited] : id_list) {
        auto reply = connection.read_reply();
        if (damaged(reply, keys.worker(id), "hash")) continue;
        const auto& items = reply.as_array();
        if (items.empty()) continue;  // expired (or forgotten) between the two round trips
        WorkerRecord record;
        record.id = id;
        record.exited = exited;
        for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
            const auto& field = items[i].as_string();
            const auto& value = items[i + 1].as_string();
            auto number = [&] {
                try {
                    return std::stoll(value);
                } catch (...) {
                    return 0LL;
                }
            };
            if (field == "name")
                record.name = value;
            else if (field == "host")
                record.host = value;
            else if (field == "state")
                record.state = value;
            else if (field == "pid")
                record.pid = number();
            else if (field == "queues") {
                std::stringstream list(value);
                for (std::string queue; std::getline(list, queue, ',');)
                    record.queues.push_back(queue);
            } else if (field == "concurrency")
                record.concurrency = number();
            else if (field == "busy")
                record.busy = number();
            else if (field == "processed")
                record.processed = number();
            else if (field == "failed")
                record.failed = number();
            else if (field == "started_at")
                record.started_at_ms = number();
            else if (field == "last_heartbeat")
                record.last_heartbeat_ms = number();
            else if (field == "stopped_at")
                record.stopped_at_ms = number();
            else if (field == "reason")
                record.reason = value;
        }
        record.live =
            !record.exited && server_now_ms - record.last_heartbeat_ms < lost_after.count();
        records.push_back(std::move(record));
    }
    return records;
}

}  // namespace workq::queue
