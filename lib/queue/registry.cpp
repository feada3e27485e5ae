#include "queue/registry.hpp"

#include <sstream>

#include "queue/scripts.hpp"

namespace workq::queue {

ScriptCall heartbeat_call(const NamespaceKeys& keys, std::string_view worker_id,
                          const Fields& fields, bool stop) {
    ScriptCall call;
    call.script = &script("heartbeat");
    call.keys = {keys.workers(), keys.worker(worker_id)};
    call.args = {std::string(worker_id), std::to_string(lost_after.count()),
                 std::to_string(forget_after.count()), stop ? "stop" : "beat"};
    for (const auto& [field, value] : fields) {
        call.args.push_back(field);
        call.args.push_back(value);
    }
    return call;
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
                                       long long& server_now_ms) {
    auto workers_key = keys.workers();
    connection.append({"TIME"});
    connection.append({"ZRANGE", workers_key, "0", "-1"});
    auto time = connection.read_reply();
    auto ids = connection.read_reply();
    if (ids.is_error()) throw RedisError("cannot list workers: " + ids.text);
    server_now_ms = time.at(0).as_integer() * 1000 + time.at(1).as_integer() / 1000;
    std::vector<std::string> id_list;
    for (const auto& id : ids.as_array())
        id_list.push_back(id.as_string());
    for (const auto& id : id_list) {
        auto key = keys.worker(id);
        connection.append({"HGETALL", key});
    }
    std::vector<WorkerRecord> records;
    for (const auto& id : id_list) {
        auto reply = connection.read_reply();
        const auto& items = reply.as_array();
        if (items.empty()) continue;  // expired between the two round trips
        WorkerRecord record;
        record.id = id;
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
        }
        record.live = server_now_ms - record.last_heartbeat_ms < lost_after.count();
        records.push_back(std::move(record));
    }
    return records;
}

}  // namespace workq::queue
