#include "claim_plan.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

namespace workq::work {

namespace {

using Millis = std::chrono::milliseconds;

bool one_slot(std::span<const int> slots) {
    return std::all_of(slots.begin(), slots.end(), [&](int slot) { return slot == slots.front(); });
}

QueueGroups everything(std::size_t count) {
    QueueGroups groups(1);
    for (std::size_t i = 0; i < count; ++i)
        groups.front().push_back(i);
    return groups;
}

std::optional<Millis> earliest(std::optional<Millis> a, std::optional<Millis> b) {
    if (!a) return b;
    if (!b) return a;
    return std::min(*a, *b);
}

}  // namespace

QueueGroups claim_links(std::span<const int> slots, bool split) {
    if (slots.empty()) return {};
    if (!split || one_slot(slots)) return everything(slots.size());
    QueueGroups links;
    for (std::size_t i = 0; i < slots.size(); ++i) {
        if (i == 0 || slots[i] != slots[i - 1]) links.emplace_back();
        links.back().push_back(i);
    }
    return links;
}

QueueGroups wait_groups(std::span<const int> slots, bool split) {
    if (slots.empty()) return {};
    if (!split || one_slot(slots)) return everything(slots.size());
    QueueGroups groups;
    std::vector<int> group_slots;
    for (std::size_t i = 0; i < slots.size(); ++i) {
        auto found = std::find(group_slots.begin(), group_slots.end(), slots[i]);
        if (found == group_slots.end()) {
            group_slots.push_back(slots[i]);
            groups.emplace_back();
            groups.back().push_back(i);
        } else {
            groups[static_cast<std::size_t>(found - group_slots.begin())].push_back(i);
        }
    }
    return groups;
}

void merge_claim(queue::ClaimResult& total, queue::ClaimResult part,
                 std::span<const std::size_t> link, std::size_t queue_count) {
    total.holds.resize(queue_count);
    auto served = [&](std::size_t index) {
        return index < link.size() ? link[index] : queue_count;
    };
    total.next_due = earliest(total.next_due, part.next_due);
    total.next_tick = earliest(total.next_tick, part.next_tick);
    for (std::size_t i = 0; i < part.holds.size() && i < link.size(); ++i)
        if (link[i] < queue_count) total.holds[link[i]] = part.holds[i];
    for (auto& damage : part.damaged) {
        damage.queue_index = served(damage.queue_index);
        if (damage.queue_index < queue_count) total.damaged.push_back(std::move(damage));
    }
    for (auto& job : part.jobs) {
        job.queue_index = served(job.queue_index);
        if (job.queue_index < queue_count) total.jobs.push_back(std::move(job));
    }
}

}  // namespace workq::work
