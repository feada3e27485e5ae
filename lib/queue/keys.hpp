// Every Redis key workq uses, built in one place.
//
// Keys of one queue share the hash tag {NS:QUEUE}, so each script touches one cluster slot:
//   {NS:QUEUE}:meta, :priorities, :waiting:<prio>, :scheduled, :running, :dead, :wake,
//   :job:<id>, :errors:<id>, :unique:<key>, :done:<id>,
//   :schedules, :ticks, :schedule:<name> (workq-schedule, lib/lua/schedule_*.lua)
// Keys of the namespace share the tag {NS}:
//   {NS}:queues (set of queue names), {NS}:workers (zset id -> heartbeat ms),
//   {NS}:worker:<id> (hash: the worker's registration),
//   {NS}:id:<id> (string: the queue holding or making the job with a caller-chosen id; expires),
//   {NS}:exited (zset id -> when the final registration of a worker that exited is forgotten, ms)
// The Lua scripts build per-job keys from the queue's prefix "{NS:QUEUE}:" with the same
// suffixes (lib/lua/common/helpers.lua lists them).
#pragma once

#include <string>
#include <string_view>

namespace workq::queue {

class QueueKeys {
  public:
    // Both names must already be valid (util/names.hpp): neither may hold ':' or braces.
    QueueKeys(std::string_view namespace_name, std::string_view queue);

    const std::string& queue() const { return queue_; }
    const std::string& prefix() const { return prefix_; }  // "{NS:QUEUE}:"
    std::string meta() const { return prefix_ + "meta"; }
    std::string priorities() const { return prefix_ + "priorities"; }
    std::string waiting(long long priority) const {
        return prefix_ + "waiting:" + std::to_string(priority);
    }
    std::string scheduled() const { return prefix_ + "scheduled"; }
    std::string running() const { return prefix_ + "running"; }
    std::string dead() const { return prefix_ + "dead"; }
    std::string wake() const { return prefix_ + "wake"; }
    std::string job(std::string_view id) const { return prefix_ + "job:" + std::string(id); }
    std::string errors(std::string_view id) const { return prefix_ + "errors:" + std::string(id); }
    std::string unique(std::string_view key) const {
        return prefix_ + "unique:" + std::string(key);
    }
    std::string done(std::string_view id) const { return prefix_ + "done:" + std::string(id); }
    // Schedules (workq-schedule): the names of the queue's schedules (set), the next tick of
    // each unpaused one (zset name -> epoch ms), and each one's definition (hash).
    std::string schedules() const { return prefix_ + "schedules"; }
    std::string ticks() const { return prefix_ + "ticks"; }
    std::string schedule(std::string_view name) const {
        return prefix_ + "schedule:" + std::string(name);
    }

  private:
    std::string queue_;
    std::string prefix_;
};

class NamespaceKeys {
  public:
    explicit NamespaceKeys(std::string_view namespace_name);

    const std::string& name() const { return name_; }
    std::string queues() const { return prefix_ + "queues"; }
    std::string workers() const { return prefix_ + "workers"; }
    std::string worker(std::string_view id) const { return prefix_ + "worker:" + std::string(id); }
    // The namespace-wide reservation of a caller-chosen job id (lib/lua/reserve_id.lua).
    std::string id(std::string_view job_id) const { return prefix_ + "id:" + std::string(job_id); }
    std::string exited() const { return prefix_ + "exited"; }
    // Queues `workq-queue rm` removed (zset name -> when, server ms), kept a week: their ended
    // jobs' records stay until their TTL, and `workq-status job ID` still looks there.
    std::string removed() const { return prefix_ + "removed"; }

  private:
    std::string name_;
    std::string prefix_;  // "{NS}:"
};

}  // namespace workq::queue
