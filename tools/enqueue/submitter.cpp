#include "submitter.hpp"

#include <algorithm>

#include "queue/client.hpp"
#include "util/ids.hpp"

namespace workq::enqueue {
namespace {

// A chunk is one script call; a window is the chunks sent in one round trip. Sizes balance a
// short script run (the server serves nobody else meanwhile) against round trips per job.
constexpr std::size_t chunk_jobs = 256;
constexpr std::size_t chunk_bytes = 512 * 1024;
constexpr std::size_t window_chunks = 8;

}  // namespace

Submitter::Submitter(redis::Connection& connection, const queue::NamespaceKeys& namespace_keys,
                     const queue::QueueKeys& keys, const queue::EnqueueOptions& options, OnId on_id)
    : connection_(connection),
      namespace_keys_(namespace_keys),
      keys_(keys),
      options_(options),
      on_id_(std::move(on_id)) {}

void Submitter::require_replicas(long long replicas, std::chrono::milliseconds timeout) {
    replicas_ = replicas;
    replicas_timeout_ = timeout;
}

void Submitter::add(std::string payload, std::string caller_id) {
    chunk_bytes_ += payload.size() + caller_id.size() + 32;
    chunk_.push_back({caller_id.empty() ? new_job_id() : std::move(caller_id), std::move(payload)});
    if (chunk_.size() >= chunk_jobs || chunk_bytes_ >= chunk_bytes) close_chunk();
}

void Submitter::close_chunk() {
    if (chunk_.empty()) return;
    window_.push_back(std::move(chunk_));
    chunk_.clear();
    chunk_bytes_ = 0;
    if (window_.size() >= window_chunks) flush_window();
}

void Submitter::finish() {
    close_chunk();
    flush_window();
}

void Submitter::flush_window() {
    if (window_.empty()) return;
    if (replicas_ > 0) connection_.begin_durable_writes();
    bool registering = !queue_registered_;
    if (registering) {
        // Discovery without KEYS: the namespace's set of queues, sent with the first chunk.
        auto set = namespace_keys_.queues();
        connection_.append({"SADD", set, keys_.queue()});
    }
    std::vector<queue::ScriptCall> calls;
    calls.reserve(window_.size());
    std::vector<std::vector<queue::NewJob>> sent(window_.size());
    for (std::size_t c = 0; c < window_.size(); ++c) {
        auto& jobs = sent[c];
        jobs.reserve(window_[c].size());
        for (const auto& job : window_[c])
            jobs.push_back({job.id, job.payload});
        calls.push_back(queue::enqueue_call(keys_, options_, jobs));
        queue::append(connection_, calls.back());
    }
    if (registering) {
        auto reply = connection_.read_reply();
        if (reply.is_error()) throw RedisError("cannot register the queue: " + reply.text);
        queue_registered_ = true;
        created_queue_ = reply.type == redis::Reply::Type::integer && reply.integer == 1;
    }
    auto replies = connection_.read_script_replies();
    std::vector<std::pair<std::string, Made>> acknowledged;
    for (std::size_t c = 0; c < window_.size(); ++c) {
        queue::check_reply(calls[c], replies[c]);
        auto results = queue::parse_enqueue(replies[c], sent[c]);
        for (std::size_t j = 0; j < results.size(); ++j) {
            auto result = std::move(results[j]);
            // A generated id that collided with an existing job: retry with a fresh one. The
            // first call made nothing, so nothing is duplicated.
            while (result.status == queue::EnqueueStatus::collision) {
                std::string fresh_id = new_job_id();
                std::vector<queue::NewJob> retry{{fresh_id, window_[c][j].payload}};
                auto call = queue::enqueue_call(keys_, options_, retry);
                result = queue::parse_enqueue(queue::run(connection_, call), retry).at(0);
            }
            acknowledged.emplace_back(
                std::move(result.id),
                result.status == queue::EnqueueStatus::existing ? Made::existing : Made::created);
        }
    }
    // --replicas: the window's writes on that many replicas before its ids are printed. Fewer
    // within the timeout: the jobs exist all the same, so their ids are printed, and counted.
    if (replicas_ > 0) {
        auto got = connection_.wait_for_replicas(replicas_, replicas_timeout_);
        if (got < replicas_) {
            under_replicated_ += acknowledged.size();
            fewest_replicas_ = std::min(fewest_replicas_.value_or(got), got);
        }
    }
    for (auto& [id, made] : acknowledged) {
        ++acknowledged_;
        on_id_(id, made);
    }
    window_.clear();
}

}  // namespace workq::enqueue
