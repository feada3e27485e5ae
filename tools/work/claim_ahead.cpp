#include "claim_ahead.hpp"

#include <algorithm>

namespace workq::work {

ClaimAhead::Ask ClaimAhead::ask(std::size_t starting, std::optional<std::size_t> budget) const {
    std::size_t taken = held_.size() + asked_ahead_;
    std::size_t ahead = limit_ > taken ? limit_ - taken : 0;
    if (budget) {
        starting = std::min(starting, *budget);
        ahead = std::min(ahead, *budget - starting);
    }
    return {starting + ahead, ahead};
}

void ClaimAhead::hold(queue::ClaimedJob job) {
    held_.push_back(std::move(job));
}

std::optional<queue::ClaimedJob> ClaimAhead::next() {
    if (held_.empty()) return std::nullopt;
    auto first = std::min_element(held_.begin(), held_.end(), [](const auto& a, const auto& b) {
        return a.queue_index < b.queue_index;  // the first of equals: the oldest
    });
    auto job = std::move(*first);
    held_.erase(first);
    return job;
}

std::optional<queue::ClaimedJob> ClaimAhead::take(std::string_view id, std::string_view token) {
    auto found = std::find_if(held_.begin(), held_.end(),
                              [&](const auto& job) { return job.id == id && job.token == token; });
    if (found == held_.end()) return std::nullopt;
    auto job = std::move(*found);
    held_.erase(found);
    return job;
}

std::vector<queue::ClaimedJob> ClaimAhead::give_back_all() {
    std::vector<queue::ClaimedJob> out(std::make_move_iterator(held_.begin()),
                                       std::make_move_iterator(held_.end()));
    held_.clear();
    return out;
}

std::vector<queue::ClaimedJob> ClaimAhead::set_limit(std::size_t limit) {
    limit_ = limit;
    std::vector<queue::ClaimedJob> out;
    while (held_.size() > limit_) {
        out.push_back(std::move(held_.back()));
        held_.pop_back();
    }
    return out;
}

}  // namespace workq::work
