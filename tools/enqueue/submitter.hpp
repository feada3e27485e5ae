// Sends jobs to the enqueue script in chunks, several chunks per round trip, and reports each
// job's id once the server has acknowledged its chunk: an id on stdout is always enqueued.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "queue/keys.hpp"
#include "queue/transitions.hpp"
#include "redis/connection.hpp"

namespace workq::enqueue {

class Submitter {
  public:
    // `on_id` is called with each job's id, in input order, once it is acknowledged: the new
    // job's id (Made::created), or the existing job's for --id and --unique (Made::existing).
    enum class Made { created, existing };
    using OnId = std::function<void(const std::string&, Made)>;
    Submitter(redis::Connection& connection, const queue::NamespaceKeys& namespace_keys,
              const queue::QueueKeys& keys, const queue::EnqueueOptions& options, OnId on_id);

    // Adds a job; its id is the caller's (options.caller_ids) or a new one. May send.
    void add(std::string payload, std::string caller_id = {});
    // Sends everything still buffered and waits for the acknowledgements.
    void finish();

    // --replicas: after each round trip's writes, WAIT until `replicas` replicas have them, at
    // most `timeout` (0: no limit), before their ids go to on_id.
    void require_replicas(long long replicas, std::chrono::milliseconds timeout);
    // The jobs whose writes fewer replicas than required acknowledged, and the fewest that did.
    std::size_t under_replicated() const { return under_replicated_; }
    std::optional<long long> fewest_replicas() const { return fewest_replicas_; }

    std::size_t acknowledged() const { return acknowledged_; }
    // Whether the first chunk made the queue known to the namespace (it was never seen).
    bool created_queue() const { return created_queue_; }

  private:
    struct Pending {
        std::string id;
        std::string payload;
    };
    void close_chunk();
    void flush_window();

    redis::Connection& connection_;
    const queue::NamespaceKeys& namespace_keys_;
    const queue::QueueKeys& keys_;
    queue::EnqueueOptions options_;
    OnId on_id_;
    std::vector<std::vector<Pending>> window_;  // chunks not yet acknowledged
    std::vector<Pending> chunk_;                // the chunk being filled
    std::size_t chunk_bytes_ = 0;
    std::size_t acknowledged_ = 0;
    bool queue_registered_ = false;
    long long replicas_ = 0;
    std::chrono::milliseconds replicas_timeout_{1000};
    std::size_t under_replicated_ = 0;
    std::optional<long long> fewest_replicas_;
    bool created_queue_ = false;
};

}  // namespace workq::enqueue
