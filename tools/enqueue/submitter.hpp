// Sends jobs to the enqueue script in chunks, several chunks per round trip, and reports each
// job's id once the server has acknowledged its chunk: an id on stdout is always enqueued.
#pragma once

#include <functional>
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
    bool created_queue_ = false;
};

}  // namespace workq::enqueue
