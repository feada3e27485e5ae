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

LinkSkips::LinkSkips(std::size_t links, Millis first, Millis cap)
    : links_(links), first_(first), cap_(std::max(first, cap)) {}

std::size_t LinkSkips::next(std::size_t from) const {
    for (std::size_t i = from; i < links_.size(); ++i)
        if (!skipped(i)) return i;
    return links_.size();
}

std::optional<std::size_t> LinkSkips::due(Clock::time_point now) const {
    for (std::size_t i = 0; i < links_.size(); ++i)
        if (links_[i].until && !links_[i].retrying && *links_[i].until <= now) return i;
    return std::nullopt;
}

void LinkSkips::retrying(std::size_t link) {
    if (link < links_.size() && links_[link].until) links_[link].retrying = true;
}

Millis LinkSkips::refused(std::size_t link, Clock::time_point now) {
    if (link >= links_.size()) return Millis(0);
    auto& entry = links_[link];
    entry.pause = entry.pause.count() == 0 ? first_ : std::min(cap_, entry.pause * 2);
    entry.until = now + entry.pause;
    entry.retrying = false;
    return entry.pause;
}

bool LinkSkips::answered(std::size_t link) {
    if (link >= links_.size()) return false;
    bool was = links_[link].until.has_value();
    links_[link] = Link{};
    return was;
}

void LinkSkips::abandoned(std::size_t link) {
    if (link < links_.size()) links_[link].retrying = false;
}

bool LinkSkips::skipped(std::size_t link) const {
    return link >= links_.size() || links_[link].until.has_value();
}

bool LinkSkips::any_skipped() const {
    return std::any_of(links_.begin(), links_.end(),
                       [](const Link& entry) { return entry.until.has_value(); });
}

std::optional<LinkSkips::Clock::time_point> LinkSkips::next_retry() const {
    std::optional<Clock::time_point> first;
    for (const auto& entry : links_)
        if (entry.until && !entry.retrying && (!first || *entry.until < *first))
            first = entry.until;
    return first;
}

}  // namespace workq::work
