// Claiming: how many jobs, from which queues, and waiting (BLPOP on the wake-up lists, never
// polling) when there are none; the limits that hold a queue back; --burst's end.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <span>
#include <utility>

#include "claim_plan.hpp"
#include "util/duration.hpp"
#include "util/errors.hpp"
#include "util/faults.hpp"
#include "util/log.hpp"
#include "util/names.hpp"
#include "util/time.hpp"
#include "worker.hpp"
#include "worker_internal.hpp"

namespace workq::work {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace detail;

std::size_t Worker::free_slots() const {
    std::size_t free = 0;
    for (std::size_t i = 0;
         i < slots_.size() && i < static_cast<std::size_t>(settings_.concurrency); ++i)
        if (slot_ready(slots_[i])) ++free;
    return free;
}

std::size_t Worker::busy_slots() const {
    std::size_t busy = 0;
    for (const auto& slot : slots_)
        if (slot.job) ++busy;
    return busy;
}

void Worker::pause_claims_for_shortage() {
    if (short_of_resources_) return;
    short_of_resources_ = true;
    shortage_timer_.expires_after(shortage_pause);
    shortage_timer_.async_wait([this](auto error) {
        if (error) return;
        short_of_resources_ = false;
        maybe_claim();
    });
}

void Worker::maybe_claim() {
    // Jobs claimed ahead first: a slot that freed starts one without waiting for Redis.
    start_held_jobs();
    if (state_ != State::running || claims_in_flight_ >= max_claims_in_flight ||
        short_of_resources_ || claim_retry_armed_ || !first_reap_done_ || !commands_ ||
        !commands_->ready())
        return;
    // The slots a claim on its way would fill are not asked for again; nor are the places
    // ahead (--claim-ahead) that jobs held or claims on their way fill.
    std::size_t free = free_slots();
    std::size_t starting = free > slots_claimed_for_ ? free - slots_claimed_for_ : 0;
    // A claim on its way for places ahead fills a slot that freed meanwhile (its job starts at
    // once, with a start notice): that slot is not asked for again. Asked for again, a job
    // counted at its claim could arrive after an older one held ahead, and either start first
    // (out of order) or be held counted (a kill -9 would then count a run it never had).
    auto coming_ahead = claim_ahead_.asked_ahead();
    starting = starting > coming_ahead ? starting - coming_ahead : 0;
    std::optional<std::size_t> budget;
    if (settings_.max_jobs > 0) {
        // --max-jobs counts jobs started: those held ahead or asked for will start.
        auto left = settings_.max_jobs - jobs_started_ -
                    static_cast<long long>(slots_claimed_for_) -
                    static_cast<long long>(claim_ahead_.held() + claim_ahead_.asked_ahead());
        if (left <= 0) return;
        budget = static_cast<std::size_t>(left);
    }
    auto ask = claim_ahead_.ask(starting, budget);
    if (ask.max == 0) return;
    // (A single link: on a cluster's several, the claim on its way may be a refused link's retry
    // that waits seconds for a moving slot, and the other queues' claims must not wait for it.)
    if (claims_in_flight_ > 0 && claim_links_.size() == 1 &&
        ask.max < second_claim_least(settings_.concurrency))
        return;
    std::size_t wanted = ask.max;
    // On a cluster, a link refused lately is left out (the chain begins at the first link not
    // refused); when its pause is over, a chain of its own asks it for one job (a retry), so that
    // the other queues' claims do not wait for its answer (a moving slot's takes seconds).
    std::size_t first = 0;
    bool retry = false;
    if (claim_links_.size() > 1) {
        if (auto due = link_skips_.due(std::chrono::steady_clock::now())) {
            first = *due;
            retry = true;
            wanted = 1;
            ask = {1, starting > 0 ? std::size_t(0) : std::size_t(1)};
            link_skips_.retrying(first);
        } else {
            first = link_skips_.next(0);
            if (first >= claim_links_.size()) {
                arm_link_retry();
                return;
            }
        }
    }
    ++claims_in_flight_;
    slots_claimed_for_ += wanted - ask.ahead;
    claim_ahead_.sent(ask);
    last_claim_sent_ = std::chrono::steady_clock::now();
    auto chain = std::make_shared<ClaimChain>();
    chain->wanted = chain->left = wanted;
    chain->ahead_left = ask.ahead;
    chain->ask = ask;
    chain->epoch = claim_epoch_;
    chain->link = first;
    chain->retry = retry;
    claim_link(std::move(chain));
}

void Worker::claim_link(std::shared_ptr<ClaimChain> chain) {
    // A link is a run of consecutive queues (claim_plan.hpp): their keys, as a part of ours.
    const auto& link = claim_links_[chain->link];
    auto queues = std::span<const queue::QueueKeys>(queue_keys_).subspan(link.front(), link.size());
    auto token_base = fmt::format("{}.{}", worker_id_, ++claim_sequence_);
    // The successes of these queues that wait for a settle ride in the claim's call: one round
    // trip settles them and claims the next jobs (README, "One round").
    auto loan = settler_->lend(link.front(), link.size());
    std::vector<queue::ClaimSuccess> successes;
    successes.reserve(loan.successes.size());
    for (std::size_t i = 0; i < loan.successes.size(); ++i) {
        const auto& success = loan.successes[i];
        successes.push_back({loan.queues[i] - link.front(),
                             {success.id, success.token, success.result, success.dropped}});
    }
    auto call = queue::claim_call(queues, worker_id_, token_base, settings_.lease, chain->left,
                                  chain->ahead_left, successes, settings_.result_ttl);
    // The loan keeps its results (at most Settler::lend_most_bytes): a round refused or lost
    // sends them again in `complete`.
    commands_->script(*call.script, call.keys, call.args,
                      [this, call, chain, loan = std::make_shared<Settler::Loan>(std::move(loan))](
                          std::optional<redis::Reply> reply) {
                          on_claim_link(chain, call, std::move(*loan), std::move(reply));
                      });
}

void Worker::on_claim_link(const std::shared_ptr<ClaimChain>& chain, const queue::ScriptCall& call,
                           Settler::Loan loan, std::optional<redis::Reply> reply) {
    // The reply, read once: the settled statuses are the successes', whatever became of the
    // claim since (even a lost connection's reply says what the server did with them).
    std::optional<queue::ClaimResult> parsed;
    std::string malformed;
    if (reply && !reply->is_error()) {
        try {
            parsed = queue::parse_claim(*reply);
        } catch (const std::exception& error) {
            malformed = fmt::format("claim: {}", error.what());
        }
    }
    if (!loan.empty()) {
        if (!reply) {
            settler_->returned(std::move(loan));
        } else if (!parsed) {
            settler_->refused(std::move(loan), reply->is_error() ? reply->text : malformed);
        } else {
            // kill -9 here: the successes are recorded, the claimed jobs come back after
            // their lease.
            crash_point("after-round-reply");
            settler_->repay(std::move(loan), parsed->settled);
            crash_point("after-round-settled");
        }
    }
    if (chain->epoch != claim_epoch_) return;  // a lost connection's: reconnecting claims again
    // A drain waits for claims on their way (check_drained): whatever this one brought is
    // started or given back by now.
    struct DrainCheck {
        Worker* worker;
        ~DrainCheck() { worker->check_drained(); }
    } drain_check{this};
    if (!reply) {  // the connection failed: reconnecting claims again
        link_skips_.abandoned(chain->link);
        end_claim_chain(*chain, false);
        return;
    }
    queue::ClaimResult result;
    try {
        queue::check_reply(call, *reply);
        if (!parsed) throw RedisError(malformed);
        result = std::move(*parsed);
    } catch (const queue::DataVersionError& error) {
        end_claim_chain(*chain, false);
        fatal(error.what());
        return;
    } catch (const std::exception& error) {
        auto message = fmt::format("claim failed: {}", error.what());
        if (claim_links_.size() == 1) {
            end_claim_chain(*chain, false);
            claim_refused(message);
            return;
        }
        // One link of several (a cluster: its slot moves, its master turned replica...): the
        // queues after it are asked for the rest, and this one again when its pause is over.
        link_refused(chain->link, message);
        chain->refusal = std::move(message);
        next_claim_link(chain);
        return;
    }
    claim_recovered();
    chain->answered = true;
    if (claim_links_.size() > 1 && link_skips_.answered(chain->link) &&
        !link_error_logged_[chain->link].empty()) {
        link_error_logged_[chain->link].clear();
        std::vector<std::string> names;
        for (auto q : claim_links_[chain->link])
            names.push_back(settings_.queues[q]);
        log::info(fmt::format("claims from {} work again", fmt::join(names, ",")),
                  {{"worker", worker_label()}});
    }
    crash_point("after-claim");
    const auto& link = claim_links_[chain->link];
    merge_claim(chain->total, std::move(result), link, queue_keys_.size());
    // This link's jobs, numbered by the served queues; they start here, so the chain's total
    // keeps only the holds, the damage and the hints.
    auto jobs = std::exchange(chain->total.jobs, {});
    // The damage of the link's queues: each queue's is known from its own claim.
    for (auto q : link) {
        std::optional<std::string> damage;
        for (const auto& found : chain->total.damaged)
            if (found.queue_index == q) damage = found.what;
        note_damage(q, damage);
    }
    // The jobs start now, before the next link is asked: a job of a queue given earlier starts
    // before one of a later queue.
    auto got = std::min(jobs.size(), chain->left);
    std::size_t got_ahead = 0;
    for (const auto& claimed : jobs)
        if (claimed.ahead) ++got_ahead;
    got_ahead = std::min(got_ahead, chain->ahead_left);
    chain->left -= got;
    chain->ahead_left -= got_ahead;
    slots_claimed_for_ -= std::min(slots_claimed_for_, got - std::min(got, got_ahead));
    for (auto& claimed : jobs) {
        retries_.erase(claimed.id);  // its retry is here
        Job job;
        job.queue_index = claimed.queue_index;
        job.claimed = std::move(claimed);
        job.claimed_at = std::chrono::steady_clock::now();
        Slot* free_slot = nullptr;
        // A job claimed ahead takes a free slot that no other claim on its way counts on; a
        // job to start now takes any.
        if (!job.claimed.ahead || free_slots() > slots_claimed_for_)
            for (std::size_t i = 0;
                 i < slots_.size() && i < static_cast<std::size_t>(settings_.concurrency); ++i)
                if (slot_ready(slots_[i])) {
                    free_slot = &slots_[i];
                    break;
                }
        if (state_ == State::running && !free_slot && job.claimed.ahead &&
            claim_ahead_.held() < claim_ahead_.limit()) {
            // --claim-ahead: kept, leased, until a slot frees. Only a job the server marked
            // ahead (its attempt not counted): a counted one held here would have a run counted
            // that never happened if the worker died now (the reaper counts an unmarked lapse).
            claim_ahead_.hold(std::move(job.claimed));
            crash_point("holding-ahead");
            continue;
        }
        if (!free_slot || state_ != State::running) {
            // Draining or paused since the claim went out, or a counted job whose slot another
            // took meanwhile: give it back, uncounted.
            release(job);
            continue;
        }
        if (claim_ahead_.held() > 0 && job.claimed.ahead) {
            // Jobs held ahead came with earlier claims (replies come in the order sent): they
            // go first, in the queues' priority order, oldest first; this one, marked ahead too,
            // waits in the place of the one that starts. A job counted at its claim (it came for
            // a slot that freed while a claim for a place ahead was on its way) starts at once
            // instead: held, a kill -9 would have its lapse counted as a run it never had.
            claim_ahead_.hold(std::move(job.claimed));
            auto first = claim_ahead_.next();
            job.queue_index = first->queue_index;
            job.claimed = std::move(*first);
        }
        start_job(*free_slot, std::move(job));
    }
    next_claim_link(chain);
}

void Worker::next_claim_link(const std::shared_ptr<ClaimChain>& chain) {
    if (chain->retry) {
        // A refused link's retry: its chain has that link only. Refused again, the other queues'
        // claims go on (this slot is theirs again).
        bool answered = chain->answered;
        end_claim_chain(*chain, answered);
        if (!answered) maybe_claim();
        return;
    }
    if (chain->left > 0 && state_ == State::running && commands_ && commands_->ready()) {
        // The next queues in priority order (not paused after a refusal) are asked for the rest.
        auto next = next_link(chain->link + 1);
        if (next < claim_links_.size()) {
            chain->link = next;
            claim_link(chain);
            return;
        }
    }
    if (!chain->answered) {
        // Every link asked was refused: a pause of every claim, as with a single link.
        end_claim_chain(*chain, false);
        claim_refused(chain->refusal);
        return;
    }
    end_claim_chain(*chain, true);
}

std::size_t Worker::next_link(std::size_t from) {
    if (claim_links_.size() <= 1) return from;
    return link_skips_.next(from);
}

void Worker::link_refused(std::size_t link, const std::string& error) {
    auto pause = link_skips_.refused(link, std::chrono::steady_clock::now());
    if (error != link_error_logged_[link]) {
        link_error_logged_[link] = error;
        std::vector<std::string> names;
        for (auto q : claim_links_[link])
            names.push_back(settings_.queues[q]);
        log::error(fmt::format("{}; claiming from {} again in {} (doubling up to {} while it is "
                               "refused); the other queues are claimed meanwhile",
                               error, fmt::join(names, ","), format_duration(pause),
                               format_duration(max_link_pause)),
                   {{"worker", worker_label()}});
    }
    arm_link_retry();
}

void Worker::arm_link_retry() {
    auto when = link_skips_.next_retry();
    if (!when) return;
    link_retry_timer_.expires_at(*when);
    link_retry_timer_.async_wait([this](auto error) {
        if (!error) maybe_claim();
    });
}

void Worker::end_claim_chain(ClaimChain& chain, bool look_again) {
    --claims_in_flight_;
    // Successes that waited for a claim go with the next one sent in this turn, else alone.
    if (claims_in_flight_ == 0) settler_->claims_ended();
    slots_claimed_for_ -= std::min(slots_claimed_for_, chain.left - chain.ahead_left);
    claim_ahead_.answered(chain.ask);
    // A slot this chain counted on and did not fill takes a job held ahead now (it arrived
    // while the slot was promised to this chain), not at the next wake-up.
    start_held_jobs();
    if (!look_again) return;
    firer_->on_claim_hint(chain.total.next_tick);
    bool held = note_holds(chain.total.holds);
    if (chain.left == 0) {
        maybe_claim();
        return;
    }
    if (settings_.burst) {
        if (held) {
            // Jobs wait but a limit holds them back: they are due, so the burst goes on.
            // A rate hold's timer claims again; a concurrency hold looks every second.
            if (!rate_hold_armed()) {
                hold_timer_.expires_after(burst_concurrency_look);
                hold_timer_.async_wait([this](auto error) {
                    if (!error) maybe_claim();
                });
            }
            return;
        }
        // A queue whose claims are refused (a cluster: its slot moving) may still have jobs:
        // link_retry_timer_ asks it again, the burst does not end meanwhile.
        if (busy_slots() == 0 && !settler_->pending() && !link_skips_.any_skipped()) burst_idle();
        return;
    }
    idle_wait(chain.total.next_due);
}

// Records which queues the claim's limits held back. A rate hold says when the next starts are
// possible: until then the worker does not wait on that queue's wake-ups (an enqueue there
// would only wake it to be held again), and a timer claims again at that time, at most
// idle_block later (so that a limit loosened meanwhile is seen). A concurrency hold has no
// time: the end of one of the queue's running jobs wakes waiters (complete, fail, release and
// reap push a wake-up), and the wait is an ordinary one.
bool Worker::note_holds(const std::vector<queue::Hold>& holds) {
    auto now = std::chrono::steady_clock::now();
    bool any = false;
    std::optional<std::chrono::steady_clock::time_point> first_end;
    for (std::size_t i = 0; i < rate_held_until_.size(); ++i) {
        auto hold = i < holds.size() ? holds[i] : queue::Hold{};
        rate_held_until_[i].reset();
        if (hold.kind == queue::HoldKind::none) continue;
        any = true;
        ++claims_held_back_;
        std::string why =
            hold.kind == queue::HoldKind::rate
                ? fmt::format("its rate limit; next start in {}", format_duration(hold.wait))
                : std::string("its concurrency limit; until one of its jobs ends");
        auto message = fmt::format("queue {} held back by {}", settings_.queues[i], why);
        if (!hold_logged_[i]) {
            hold_logged_[i] = true;
            log::info(message, {{"worker", worker_label()}});
        } else {
            log::debug(message, {{"worker", worker_label()}});
        }
        if (hold.kind == queue::HoldKind::rate) {
            auto end = now + std::min(hold.wait, idle_block);
            rate_held_until_[i] = end;
            if (!first_end || end < *first_end) first_end = end;
        }
    }
    if (first_end) {
        hold_timer_.expires_at(*first_end);
        hold_timer_.async_wait([this](auto error) {
            if (!error) maybe_claim();
        });
    } else {
        hold_timer_.cancel();
    }
    return any;
}

bool Worker::rate_hold_armed() const {
    auto now = std::chrono::steady_clock::now();
    return std::any_of(rate_held_until_.begin(), rate_held_until_.end(),
                       [&](const auto& until) { return until && *until > now; });
}

void Worker::burst_idle() {
    if (burst_reap_in_flight_) return;
    burst_reap_in_flight_ = true;
    leases_->reap_all([this](long long taken_back) {
        burst_reap_in_flight_ = false;
        if (state_ != State::running) return;
        if (taken_back > 0) {
            maybe_claim();
            return;
        }
        // Something started meanwhile: its end looks again.
        if (claims_in_flight_ > 0 || busy_slots() > 0 || settler_->pending()) return;
        // A retry that was due when the last claim went out would have been claimed by it:
        // another worker ran it, a user cancelled it, or its queue is paused. Not ours to wait
        // for any more.
        std::erase_if(retries_,
                      [&](const auto& retry) { return retry.second <= last_claim_sent_; });
        if (retries_.empty()) {
            begin_drain("--burst: no job is due");
            return;
        }
        auto earliest = retries_.begin()->second;
        for (const auto& retry : retries_)
            earliest = std::min(earliest, retry.second);
        auto wait = std::chrono::duration_cast<Millis>(earliest - std::chrono::steady_clock::now());
        log::info(fmt::format("--burst: {} job(s) it ran wait for a retry; sleeping {} until the "
                              "first is due",
                              retries_.size(), format_duration(std::max(wait, Millis(0)))),
                  {{"worker", worker_label()}});
        retry_timer_.expires_at(earliest);
        retry_timer_.async_wait([this](auto error) {
            if (!error) maybe_claim();
        });
    });
}

void Worker::claim_refused(const std::string& error) {
    // The same refusal again and again is logged once, not once a second.
    if (error != claim_error_logged_) {
        claim_error_logged_ = error;
        log::error(fmt::format("{}; trying again every {}", error, format_duration(blocking_retry)),
                   {{"worker", worker_label()}});
    }
    if (claim_retry_armed_) return;
    claim_retry_armed_ = true;
    claim_retry_timer_.expires_after(blocking_retry);
    claim_retry_timer_.async_wait([this](auto error_code) {
        claim_retry_armed_ = false;
        if (!error_code) maybe_claim();
    });
}

void Worker::claim_recovered() {
    if (claim_error_logged_.empty()) return;
    claim_error_logged_.clear();
    log::info("claims work again", {{"worker", worker_label()}});
}

void Worker::close_waiters() {
    for (auto& waiter : waiters_) {
        if (waiter.connection) waiter.connection->close();
        waiter.in_flight = false;
    }
}

void Worker::idle_wait(std::optional<Millis> next_due) {
    if (state_ != State::running || settings_.burst) return;
    // Every slot busy: no wait, unless places ahead are open (--claim-ahead).
    if (free_slots() == 0 && claim_ahead_.ask(0).ahead == 0) return;
    if (!commands_ || !commands_->ready()) return;
    for (std::size_t i = 0; i < waiters_.size(); ++i)
        wait_on(i, next_due);
}

void Worker::wait_on(std::size_t waiter_index, std::optional<Millis> next_due) {
    auto& waiter = waiters_[waiter_index];
    if (waiter.in_flight) return;
    if (!waiter.connection || waiter.connection->failed()) {
        // On a cluster: a router of its own, which sends the BLPOP to the master of the group's
        // slot and follows it (MOVED, a failover: the router fails and is opened again here,
        // reading the slot map anew).
        waiter.connection = redis::AsyncConnection::open(
            io_, server_.endpoint, std::chrono::seconds(5),
            [this, waiter_index, next_due](std::optional<std::string> error) {
                if (error) {
                    log::warn(fmt::format("cannot open the waiting connection: {}; trying again "
                                          "in {}",
                                          *error, format_duration(blocking_retry)),
                              {{"worker", worker_label()}});
                    // Nothing else would look again: without this the worker claims nothing
                    // more while its command connection stays up.
                    auto timer = std::make_shared<asio::steady_timer>(io_, blocking_retry);
                    timer->async_wait([this, timer](auto wait_error) {
                        if (!wait_error) maybe_claim();
                    });
                    return;
                }
                idle_wait(next_due);
            },
            [](const std::string&) {});
        return;
    }
    if (!waiter.connection->ready()) return;
    auto wait = idle_block;
    if (next_due) wait = std::max(Millis(10), std::min(wait, *next_due));
    std::vector<std::string> args{"BLPOP"};
    auto now = std::chrono::steady_clock::now();
    for (auto i : waiter.queues) {
        // A queue its rate limit holds back: hold_timer_ claims again when it allows. A queue
        // whose claims were refused lately: link_retry_timer_ claims again when it is due.
        if (rate_held_until_[i] && *rate_held_until_[i] > now) continue;
        if (claim_links_.size() > 1 && link_skips_.skipped(link_of_queue_[i])) continue;
        args.push_back(queue_keys_[i].wake());
    }
    if (args.size() == 1) return;  // every queue is held back: their timers look
    args.push_back(fmt::format("{:.3f}", static_cast<double>(wait.count()) / 1000.0));
    waiter.in_flight = true;
    waiter.connection->command(
        std::move(args),
        [this, waiter_index,
         asked = std::weak_ptr(waiter.connection)](std::optional<redis::Reply> reply) {
            // A replaced connection's (closed by a drain or a reconnect, failed): a newer wait
            // may be on its way on the new one.
            if (waiters_[waiter_index].connection != asked.lock()) return;
            waiters_[waiter_index].in_flight = false;
            if (reply && reply->is_error()) {
                // Refused at once (BLPOP pops: a write): waiting again at once would spin.
                claim_refused(fmt::format("waiting for jobs failed: {}", reply->text));
                return;
            }
            if (reply && reply->is_array() &&
                ((free_slots() <= slots_claimed_for_ && claim_ahead_.ask(0).ahead == 0) ||
                 state_ != State::running)) {
                // Woken while every slot is busy or already claimed for by a claim on its way
                // (maybe_claim would send nothing), or while paused (SIGTSTP, a failing health
                // check): pass the wake-up on to another worker, or it waits a whole idle_block.
                auto key = reply->at(0).as_string();
                commands_->command({"RPUSH", key, "1"}, [](auto) {});
            }
            maybe_claim();
        },
        wait + Millis(5000));
}

void Worker::note_damage(std::size_t queue_index, std::optional<std::string> what) {
    auto known = damaged_queues_.find(queue_index);
    const auto& queue = settings_.queues[queue_index];
    if (!what) {
        if (known == damaged_queues_.end()) return;
        damaged_queues_.erase(known);
        log::info("the queue is no longer damaged; claiming from it again",
                  {{"worker", worker_label()}, {"queue", queue}});
        return;
    }
    if (known != damaged_queues_.end() && known->second == *what) return;
    damaged_queues_[queue_index] = *what;
    log::error(fmt::format("the queue is damaged: {}; claiming nothing from it until it is "
                           "repaired (README, \"Damaged data\"){}",
                           printable(*what, 300),
                           queue_keys_.size() > 1 ? "; the other queues are served as usual" : ""),
               {{"worker", worker_label()}, {"queue", queue}});
}

}  // namespace workq::work
