#include "settler.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <array>
#include <boost/asio/post.hpp>
#include <memory>

#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"
#include "util/names.hpp"

namespace workq::work {

bool transient_refusal(std::string_view error) {
    static constexpr std::array codes = {
        std::string_view("NOREPLICAS"),  std::string_view("OOM"),
        std::string_view("READONLY"),    std::string_view("LOADING"),
        std::string_view("MISCONF"),     std::string_view("BUSY"),
        std::string_view("MASTERDOWN"),  std::string_view("TRYAGAIN"),
        std::string_view("CLUSTERDOWN"), std::string_view("ASK"),
        std::string_view("MOVED")};
    // A word of the text, alone or after a '-' (a script passing on its redis.call's error).
    std::size_t start = 0;
    while (start < error.size()) {
        auto end = error.find_first_of(" :", start);
        auto word = error.substr(start, end == std::string_view::npos ? end : end - start);
        if (word.starts_with('-')) word.remove_prefix(1);
        for (auto code : codes)
            if (word == code) return true;
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    return false;
}

Settler::Settler(boost::asio::io_context& io, std::size_t queues, Hooks hooks)
    : io_(io), hooks_(std::move(hooks)), batches_(queues), retry_timer_(io) {}

void Settler::settle(Outgoing outgoing) {
    if (backing_off_ || !hooks_.connected()) {
        outbox_.push_back(std::move(outgoing));
        return;
    }
    ++in_flight_;
    // Shared, not copied: the call may hold a batch of results.
    auto sent = std::make_shared<Outgoing>(std::move(outgoing));
    hooks_.send(sent->call, [this, sent](std::optional<redis::Reply> reply) {
        if (in_flight_ > 0) --in_flight_;  // drop_all may have counted it out already
        on_answer(sent, std::move(reply));
    });
}

void Settler::on_answer(const std::shared_ptr<Outgoing>& sent, std::optional<redis::Reply> reply) {
    if (!reply) {
        // Lost on the way: send it again once reconnected. One the server hangs up on again
        // and again is refused for its size: not sent unchanged once more.
        if (++sent->lost >= settle_losses_before_cut)
            cut_refused(*sent,
                        fmt::format("the connection died {} times while it was sent", sent->lost));
        outbox_.push_front(std::move(*sent));
        return;
    }
    // The server said why before hanging up ("Protocol error: invalid bulk length"): the
    // same, at once. When there is nothing to cut, it is an ordinary error (dropped below).
    if (reply->is_error() && reply->text.starts_with("ERR Protocol error") &&
        cut_refused(*sent, "the server refused it: " + printable(reply->text, 120))) {
        settle(std::move(*sent));
        return;
    }
    if (reply->is_error() && transient_refusal(reply->text)) {
        refused_for_now(std::move(*sent), reply->text);
        return;
    }
    refusals_in_a_row_ = 0;
    try {
        queue::check_reply(sent->call, *reply);
        sent->on_reply(*reply);
    } catch (const queue::DataVersionError& error) {
        hooks_.fatal(error.what());
    } catch (const std::exception& error) {
        log::error(fmt::format("reporting an outcome failed: {}", error.what()),
                   {{"worker", hooks_.label()}});
    }
    if (sent->answered) sent->answered();
    hooks_.answered();
}

void Settler::refused_for_now(Outgoing outgoing, const std::string& why) {
    outbox_.push_back(std::move(outgoing));
    if (backing_off_) return;  // the retry is armed already
    std::chrono::milliseconds delay = std::min<std::chrono::milliseconds>(
        retry_cap, retry_first * (1 << std::min(refusals_in_a_row_, 6)));
    ++refusals_in_a_row_;
    auto message = fmt::format(
        "the server refused to record an outcome for now ({}); it is kept and sent again in {}",
        printable(why, 200), format_duration(delay));
    // A streak of refusals says so once at warn, then at debug.
    if (refusals_in_a_row_ == 1)
        log::warn(message, {{"worker", hooks_.label()}});
    else
        log::debug(message, {{"worker", hooks_.label()}});
    backing_off_ = true;
    retry_timer_.expires_after(delay);
    retry_timer_.async_wait([this](auto error) {
        if (error) return;
        backing_off_ = false;
        flush();
    });
}

bool Settler::cut_refused(Outgoing& outgoing, std::string_view why) {
    if (!queue::cut_results(outgoing.call, cut_budget)) return false;
    std::vector<std::string_view> ids;
    for (std::size_t i = 2; i < outgoing.call.args.size(); i += 4)
        ids.push_back(outgoing.call.args[i]);
    log::error(fmt::format("the report of the success of {}: {}; it is too long for the server "
                           "(proto-max-bulk-len, client-query-buffer-limit): sent again with the "
                           "results cut to {} bytes in all (recorded as truncated)",
                           fmt::join(ids, ", "), why, cut_budget),
               {{"worker", hooks_.label()}});
    outgoing.lost = 0;
    return true;
}

void Settler::succeed(std::size_t queue, Success success, bool offer_to_claim) {
    batches_[queue].pending.push_back(std::move(success));
    if (offer_to_claim)
        send_soon();
    else
        send_successes(queue);
}

void Settler::send_soon() {
    if (send_posted_) return;
    send_posted_ = true;
    boost::asio::post(io_, [this, generation = generation_] {
        if (generation != generation_) return;  // drop_all: forgotten
        send_posted_ = false;
        for (std::size_t queue = 0; queue < batches_.size(); ++queue)
            if (!wait_for_claim(queue)) send_successes(queue);
    });
}

bool Settler::wait_for_claim(std::size_t queue) const {
    const auto& batch = batches_[queue];
    // One that no claim can carry (its result is too big to lend) goes in `complete`.
    return !batch.pending.empty() && !backing_off_ &&
           batch.pending.front().result.size() <= lend_most_bytes && hooks_.claim_coming &&
           hooks_.claim_coming(queue);
}

Settler::Outgoing Settler::complete_outgoing(std::size_t queue, std::vector<Success> successes) {
    auto sent = std::make_shared<std::vector<Success>>(std::move(successes));
    std::vector<queue::Completion> jobs;
    std::vector<Hold> holds;
    jobs.reserve(sent->size());
    holds.reserve(sent->size());
    for (const auto& success : *sent) {
        jobs.push_back({success.id, success.token, success.result, success.dropped});
        holds.push_back({queue, success.id, success.token});
    }
    auto call = hooks_.complete_call(queue, jobs);
    for (auto& success : *sent)
        std::string().swap(success.result);  // the call holds a copy
    ++batches_[queue].in_flight;
    return {std::move(call),
            [sent](const redis::Reply& reply) {
                auto verdicts = queue::parse_complete(reply);
                for (std::size_t i = 0; i < sent->size(); ++i)
                    (*sent)[i].settled(i < verdicts.size() ? verdicts[i] : queue::Settle::refused);
            },
            [this, queue, generation = generation_] {
                if (generation != generation_) return;
                --batches_[queue].in_flight;
                send_successes(queue);
            },
            std::move(holds)};
}

void Settler::send_successes(std::size_t queue) {
    auto& batch = batches_[queue];
    if (batch.in_flight > 0 || batch.pending.empty()) return;
    std::size_t count = 0, bytes = 0;
    while (count < batch.pending.size() && count < batch_most_jobs && bytes < batch_most_bytes)
        bytes += batch.pending[count++].result.size();
    std::vector<Success> sent(
        std::make_move_iterator(batch.pending.begin()),
        std::make_move_iterator(batch.pending.begin() + static_cast<std::ptrdiff_t>(count)));
    batch.pending.erase(batch.pending.begin(),
                        batch.pending.begin() + static_cast<std::ptrdiff_t>(count));
    settle(complete_outgoing(queue, std::move(sent)));
}

Settler::Loan Settler::lend(std::size_t first, std::size_t count) {
    Loan loan;
    loan.generation = generation_;
    // Refused for now (backing off): the successes wait for the retry, not for the claim.
    if (backing_off_) return loan;
    std::size_t bytes = 0;
    for (std::size_t queue = first; queue < first + count && queue < batches_.size(); ++queue) {
        auto& batch = batches_[queue];
        if (batch.pending.empty()) continue;
        std::size_t taken = 0;
        while (taken < batch.pending.size() && loan.successes.size() < batch_most_jobs &&
               bytes + batch.pending[taken].result.size() <= lend_most_bytes) {
            bytes += batch.pending[taken].result.size();
            loan.queues.push_back(queue);
            loan.successes.push_back(std::move(batch.pending[taken]));
            ++taken;
        }
        if (taken == 0) continue;
        batch.pending.erase(batch.pending.begin(),
                            batch.pending.begin() + static_cast<std::ptrdiff_t>(taken));
        ++batch.in_flight;
    }
    if (!loan.empty()) ++in_flight_;
    return loan;
}

void Settler::repay(Loan loan, const std::vector<queue::Settle>& statuses) {
    if (loan.empty() || loan.generation != generation_) return;
    if (in_flight_ > 0) --in_flight_;
    refusals_in_a_row_ = 0;
    loan_answered(loan);
    for (std::size_t i = 0; i < loan.successes.size(); ++i)
        loan.successes[i].settled(i < statuses.size() ? statuses[i] : queue::Settle::refused);
    hooks_.answered();
    // Successes that came meanwhile: with the next claim if one goes in this turn, else alone.
    send_soon();
}

std::vector<Settler::Outgoing> Settler::as_complete(Loan loan) {
    std::vector<Outgoing> out;
    std::size_t i = 0;
    while (i < loan.successes.size()) {
        auto queue = loan.queues[i];
        std::vector<Success> successes;
        for (; i < loan.successes.size() && loan.queues[i] == queue; ++i)
            successes.push_back(std::move(loan.successes[i]));
        out.push_back(complete_outgoing(queue, std::move(successes)));
    }
    return out;
}

void Settler::loan_answered(const Loan& loan) {
    // loan.queues lists a queue once per success, in runs: one count per run.
    for (std::size_t i = 0; i < loan.queues.size(); ++i)
        if (i == 0 || loan.queues[i] != loan.queues[i - 1]) --batches_[loan.queues[i]].in_flight;
}

void Settler::returned(Loan loan) {
    if (loan.empty() || loan.generation != generation_) return;
    if (in_flight_ > 0) --in_flight_;
    loan_answered(loan);
    // As a `complete` the connection died under: first in the outbox, sent on flush().
    auto outgoings = as_complete(std::move(loan));
    for (auto it = outgoings.rbegin(); it != outgoings.rend(); ++it) {
        it->lost = 1;
        outbox_.push_front(std::move(*it));
    }
}

void Settler::refused(Loan loan, const std::string& error) {
    if (loan.empty() || loan.generation != generation_) return;
    if (in_flight_ > 0) --in_flight_;
    loan_answered(loan);
    redis::Reply reply;
    reply.type = redis::Reply::Type::error;
    reply.text = error;
    auto outgoings = as_complete(std::move(loan));
    // A newer data model is fatal once, not once per queue.
    bool newer = error.starts_with("WORKQ_VERSION");
    for (std::size_t i = 0; i < outgoings.size(); ++i) {
        if (newer && i > 0) {
            if (outgoings[i].answered) outgoings[i].answered();
            continue;
        }
        on_answer(std::make_shared<Outgoing>(std::move(outgoings[i])), reply);
    }
}

std::vector<Settler::Hold> Settler::held() const {
    std::vector<Hold> held;
    for (const auto& outgoing : outbox_)
        held.insert(held.end(), outgoing.holds.begin(), outgoing.holds.end());
    for (std::size_t queue = 0; queue < batches_.size(); ++queue)
        for (const auto& success : batches_[queue].pending)
            held.push_back({queue, success.id, success.token});
    return held;
}

bool Settler::pending() const {
    if (!outbox_.empty() || in_flight_ > 0) return true;
    for (const auto& batch : batches_)
        if (!batch.pending.empty() || batch.in_flight > 0) return true;
    return false;
}

void Settler::flush() {
    if (hooks_.connected()) {
        // Reconnected (or the backoff ended): everything goes again now.
        backing_off_ = false;
        retry_timer_.cancel();
    }
    auto waiting = std::move(outbox_);
    outbox_.clear();
    for (auto& outgoing : waiting)
        settle(std::move(outgoing));
    // Successes that waited for a claim: with the next one if it goes in this turn, else alone.
    send_soon();
}

void Settler::drop_all() {
    ++generation_;
    send_posted_ = false;
    outbox_.clear();
    batches_.assign(batches_.size(), {});
    in_flight_ = 0;
    backing_off_ = false;
    retry_timer_.cancel();
}

}  // namespace workq::work
