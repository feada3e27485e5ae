#include "snapshot.hpp"

#include <algorithm>
#include <charconv>

#include "queue/client.hpp"
#include "redis/cluster.hpp"
#include "redis/sentinel.hpp"
#include "redis/server_info.hpp"

namespace workq::status {

namespace {

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t at = 0;
    while (at < line.size()) {
        auto start = line.find_first_not_of(' ', at);
        if (start == std::string_view::npos) break;
        auto end = std::min(line.find(' ', start), line.size());
        out.push_back(line.substr(start, end - start));
        at = end;
    }
    return out;
}

// CLUSTER NODES' address field: "host:port@bus[,hostname]" -> "host:port".
std::string node_address(std::string_view field) {
    return std::string(field.substr(0, field.find('@')));
}

SlotMigration& migration_of(std::vector<SlotMigration>& migrations, int slot) {
    for (auto& migration : migrations)
        if (migration.slot == slot) return migration;
    migrations.push_back({slot, "?", "?", false, false});
    return migrations.back();
}

}  // namespace

void add_slot_migrations(std::string_view cluster_nodes, std::vector<SlotMigration>& migrations) {
    std::vector<std::pair<std::string, std::string>> addresses;  // id -> host:port
    std::vector<std::vector<std::string_view>> lines;
    std::size_t start = 0;
    while (start < cluster_nodes.size()) {
        auto end = std::min(cluster_nodes.find('\n', start), cluster_nodes.size());
        auto line = cluster_nodes.substr(start, end - start);
        if (line.ends_with('\r')) line.remove_suffix(1);
        auto fields = words(line);
        if (fields.size() >= 8) {
            addresses.emplace_back(std::string(fields[0]), node_address(fields[1]));
            lines.push_back(std::move(fields));
        }
        start = end + 1;
    }
    auto address_of = [&](std::string_view id) {
        for (const auto& [known, address] : addresses)
            if (known == id) return address;
        return std::string("?");
    };
    for (const auto& fields : lines) {
        if (fields[2].find("myself") == std::string_view::npos) continue;
        auto self = node_address(fields[1]);
        for (std::size_t i = 8; i < fields.size(); ++i) {
            // "[slot->-id]": migrating to id; "[slot-<-id]": importing from id.
            auto field = fields[i];
            if (!field.starts_with('[') || !field.ends_with(']')) continue;
            field = field.substr(1, field.size() - 2);
            bool out = field.find("->-") != std::string_view::npos;
            auto mark = field.find(out ? "->-" : "-<-");
            if (mark == std::string_view::npos) continue;
            int slot = -1;
            auto number = field.substr(0, mark);
            auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), slot);
            if (ec != std::errc{} || ptr != number.data() + number.size() || slot < 0 ||
                slot >= redis::cluster_slot_count)
                continue;
            auto other = address_of(field.substr(mark + 3));
            auto& migration = migration_of(migrations, slot);
            if (out) {
                migration.from = self;
                migration.from_marked = true;
                if (migration.to == "?") migration.to = other;
            } else {
                migration.to = self;
                migration.to_marked = true;
                if (migration.from == "?") migration.from = other;
            }
        }
    }
}

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
        // Slot migrations: each master knows only its own side (CLUSTER NODES marks them on its
        // own line). Read before the counts, which wait while a queue's slot moves.
        for (const auto& master : connection.cluster_masters()) {
            snapshot.server.cluster_masters.push_back(
                {redis::host_port(master.address.host, master.address.port), master.slots});
            try {
                auto node = redis::Connection::open_server(
                    redis::cluster_node(server.endpoint, master.address));
                auto reply = node.command({"CLUSTER", "NODES"});
                if (reply.is_string()) add_slot_migrations(reply.text, snapshot.server.migrations);
            } catch (const RedisError&) {
                // a master out of reach shows no migration; the counts say the rest
            }
        }
        std::sort(snapshot.server.migrations.begin(), snapshot.server.migrations.end(),
                  [](const auto& a, const auto& b) { return a.slot < b.slot; });
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
        if (connection.is_cluster() && replies[i].is_error() &&
            (replies[i].text.starts_with("TRYAGAIN") || replies[i].text.starts_with("ASK "))) {
            // Its slot was still moving when the retries ran out (TRYAGAIN, or an ASK at the
            // redirect cap, as check_reply reads them): the counts are unknown.
            snapshot.queues.push_back({names[i], {}, {}, "", -1, true});
        } else {
            try {
                queue::check_reply(calls[i], replies[i]);
                snapshot.queues.push_back({names[i], queue::parse_stats(replies[i]), {}, "", -1});
            } catch (const queue::QueueDamagedError& error) {
                snapshot.queues.push_back({names[i], {}, error.damage, "", -1});
            }
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
