#include "snapshot.hpp"

#include <algorithm>

#include "queue/client.hpp"
#include "redis/cluster.hpp"
#include "redis/sentinel.hpp"
#include "redis/server_info.hpp"

namespace workq::status {

Snapshot take_snapshot(redis::Connection& connection, const cli::ServerSettings& server,
                       const std::vector<std::string>& only) {
    Snapshot snapshot;
    snapshot.namespace_name = server.namespace_name;
    snapshot.server.url = redis::describe(server.endpoint);
    snapshot.server.embedded = server.embedded;
    snapshot.server.transport = connection.transport_security();
    snapshot.server.tls = server.endpoint.tls.enabled;
    // One INFO (its default sections) for the version and the warnings.
    auto info = redis::info_fields(connection, "");
    for (const auto& [name, value] : info)
        if (name == "redis_version") snapshot.server.redis_version = value;
    snapshot.server.warnings = redis::server_warnings(info);
    snapshot.server.replicas = redis::replication_info(info).replicas;
    if (const auto& sentinel = server.endpoint.sentinel) {
        snapshot.server.topology = "sentinel";
        snapshot.server.master_name = sentinel->master_name;
        const auto& master = connection.endpoint();
        snapshot.server.master_address = redis::host_port(master.host, master.port);
        for (const auto& address : sentinel->sentinels)
            snapshot.server.sentinels.push_back(redis::host_port(address.host, address.port));
        // The one asked first next time is the one that answered this time.
        auto answered = redis::sentinels_in_turn(*sentinel).front();
        snapshot.server.sentinel = redis::host_port(answered.host, answered.port);
    }
    if (connection.is_cluster()) {
        snapshot.server.topology = "cluster";
        for (const auto& master : connection.cluster_masters())
            snapshot.server.cluster_masters.push_back(
                {redis::host_port(master.address.host, master.address.port), master.slots});
    }
    bool expected = snapshot.server.topology == "sentinel" || !snapshot.server.replicas.empty();
    snapshot.server.no_replica_in_sync =
        expected && std::none_of(snapshot.server.replicas.begin(), snapshot.server.replicas.end(),
                                 [](const auto& replica) { return replica.in_sync; });

    queue::NamespaceKeys keys(server.namespace_name);
    auto names = only.empty() ? queue::list_queues(connection, keys) : only;
    std::vector<queue::ScriptCall> calls;
    for (const auto& name : names) {
        calls.push_back(queue::stats_call(queue::QueueKeys(server.namespace_name, name)));
        queue::append(connection, calls.back());
    }
    auto replies = connection.read_script_replies();
    for (std::size_t i = 0; i < names.size(); ++i) {
        // One queue's damage is shown, and the other queues' counts as usual.
        try {
            queue::check_reply(calls[i], replies[i]);
            snapshot.queues.push_back({names[i], queue::parse_stats(replies[i]), {}, "", -1});
        } catch (const queue::QueueDamagedError& error) {
            snapshot.queues.push_back({names[i], {}, error.damage, "", -1});
        }
        if (connection.is_cluster()) {
            auto meta = queue::QueueKeys(server.namespace_name, names[i]).meta();
            snapshot.queues.back().slot = redis::key_slot(meta);
            if (auto master = connection.cluster_master_of(meta))
                snapshot.queues.back().node = redis::host_port(master->host, master->port);
        }
    }
    snapshot.workers =
        queue::list_workers(connection, keys, snapshot.server_now_ms, &snapshot.registry_damage);
    return snapshot;
}

bool Snapshot::damaged() const {
    if (!registry_damage.empty()) return true;
    return std::any_of(queues.begin(), queues.end(),
                       [](const QueueSnapshot& q) { return !q.damage.empty(); });
}

}  // namespace workq::status
