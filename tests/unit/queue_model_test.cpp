// A randomized test of the queue engine against a small in-memory model of what each transition
// should do. Thousands of mixed operations (enqueue, claim, complete, fail, release, renew, reap
// of lapsed short leases, cancel, requeue, delete, pause, purge) go to the server over several
// connections; after every step the raw keys are read with plain Redis commands and
// compared with the model: every job in exactly one state and in the structure that state puts it
// in, the same attempts, token and holder, waiting lists in the same order, counters and unique
// keys the same, and the count of jobs adding up.
//
// Corruption at every kind of key (README, "Damaged data") is one of the operations: a job record
// of the wrong type or with a field workq never writes (priority, attempts, max, state, payload),
// an error list, a --unique key and a wake key of the wrong type, meta counters that are not
// numbers, limits that are not numbers, the rate limit's log and the schedules' ticks and
// watchers of the wrong type, and a queue's meta of the wrong type (then mended). The model says
// what each script does when it meets them: a record is quarantined (dead-lettered with the
// reason `corrupt`) by whichever script meets it first, a damaged queue refuses every script and
// changes nothing while a claim over both queues serves the other (a claim names damaged ticks
// when it reads them, for its hint, and serves the queue all the same; the model sets no rate
// limit, so a damaged rate log changes nothing), replaced keys are simply replaced.
//
// The seed is fixed (WORKQ_MODEL_SEED overrides it) and printed with every failure, together with
// the step and the operation, so a failure can be replayed.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "queue/transitions.hpp"
#include "redis_fixture.hpp"

namespace workq::test {
namespace {

using queue::EnqueueStatus;
using queue::JobState;
using queue::Settle;

constexpr std::uint64_t default_seed = 20261126;
constexpr int default_steps = 3000;
constexpr int queue_count = 2;
constexpr int worker_count = 3;
constexpr int connection_count = 3;
constexpr std::array<long long, 3> priorities_used{-1, 0, 5};
constexpr std::array<const char*, 4> unique_keys{"u0", "u1", "u2", "u3"};
constexpr Millis short_lease = 1ms;        // lapses at once: the next reap takes it back
constexpr Millis long_lease = 600000ms;    // never lapses during the test
constexpr Millis far_delay = 3600000ms;    // never due during the test
constexpr std::size_t max_live_jobs = 60;  // keeps each step's check short
constexpr std::size_t max_created_ids = 3000;

struct ModelJob {
    int queue = 0;
    std::string state;  // waiting, scheduled, running, succeeded, dead, cancelled
    long long priority = 0;
    long long attempts = 0;
    long long max_attempts = 1;
    std::string token, settled, worker, unique;
    bool cancel = false;
    bool far = false;              // scheduled for the far future
    std::optional<long long> due;  // scheduled: known when a fail said it
    long long deadline = 0;        // running: learned from the server after the step
    bool short_lease = false;
    long long died = 0;  // dead: learned from the server after the step
    // How its record was damaged, until a script quarantined it (or a requeue made it whole):
    // "" none; type (a string, not a hash), prio, attempts, max, state (values workq never
    // writes), payload (removed: only a claim or a requeue needs it).
    std::string corrupt;
    bool quarantined = false;  // dead-lettered with the reason `corrupt`
    bool no_payload = false;   // a quarantined record made afresh (it was not a hash)
};

struct ModelQueue {
    std::map<long long, std::deque<std::string>> waiting;  // priority -> ids, head first
    bool paused = false;
    long long succeeded = 0, failed = 0;
    std::map<std::string, std::string> unique;  // key -> the id its key names
    std::set<std::string> unique_damaged;       // keys that hold a hash instead of an id
    bool damaged = false;                       // its meta holds a string (the real one aside)
    // A structure of the limits or the schedules holding a string (the model has neither, so
    // the key was absent): "starts" and "ticks" make a claim skip and name the queue, which the
    // other transitions do not read; "watchers" only the firer reads.
    std::string claim_damage;
    bool failed_corrupt = false, succeeded_corrupt = false;  // the counter holds "x"
};

struct Issued {
    int queue;
    std::string id, token;
};

bool is_live(const std::string& state) {
    return state == "waiting" || state == "scheduled" || state == "running";
}

std::string state_name(JobState state) {
    return std::string(queue::to_string(state));
}

class ModelRun {
  public:
    ModelRun(std::string ns, std::uint64_t seed)
        : ns_(std::move(ns)), rng_(seed), round_rng_(seed + 1) {
        for (int i = 0; i < connection_count; ++i)
            connections_.push_back(connect_test_server());
        checker_.emplace(connect_test_server());
        for (int q = 0; q < queue_count; ++q)
            keys_.emplace_back(ns_, "mq" + std::to_string(q));
    }

    // Runs one random operation; returns its description, and in `error` what went wrong.
    std::string step(int number, std::string& error) {
        connection_ = number % connection_count;
        ttl_ = chance(0.75) ? 0ms : Engine::long_ttl;
        if (pick(1000) < 30) return op_corrupt(error);
        int roll = pick(1000);
        if (roll < 180) return op_enqueue(error);
        if (roll < 390) return op_claim(error);
        if (roll < 530) return op_complete(error);
        if (roll < 640) return op_fail(error);
        if (roll < 690) return op_release(error);
        if (roll < 750) return op_renew(error);
        if (roll < 820) return op_reap(error);
        if (roll < 880) return op_cancel(error);
        if (roll < 930) return op_requeue(error);
        if (roll < 955) return op_delete(error);
        if (roll < 995) return op_pause(error);
        return op_purge(error);
    }

    // Reads every raw key and compares it with the model; learns the times only the server
    // knows (lease deadlines, times of death, far due times). Returns the first difference.
    std::string check();

    long long created() const { return created_; }
    const std::map<std::string, int>& events() const { return events_; }

  private:
    // --- randomness ---
    int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
    bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
    template <typename T>
    const T& any_of(const std::vector<T>& items) {
        return items[static_cast<std::size_t>(pick(static_cast<int>(items.size())))];
    }

    Engine engine() { return Engine(connections_[static_cast<std::size_t>(connection_)]); }
    Raw raw() { return Raw(*checker_); }

    std::vector<std::string> ids_where(int q, const std::function<bool(const ModelJob&)>& test) {
        std::vector<std::string> out;
        for (const auto& [id, job] : jobs_)
            if (job.queue == q && test(job)) out.push_back(id);
        return out;
    }
    std::size_t live_count() const {
        std::size_t n = 0;
        for (const auto& [id, job] : jobs_)
            n += is_live(job.state) ? 1 : 0;
        return n;
    }

    // --- the model's own transitions, mirroring lib/lua ---
    void push_waiting(const std::string& id, bool at_head) {
        auto& job = jobs_.at(id);
        auto& list = queues_[static_cast<std::size_t>(job.queue)].waiting[job.priority];
        if (at_head)
            list.push_front(id);
        else
            list.push_back(id);
        job.state = "waiting";
    }
    void count_failed(int q, long long n) {
        auto& mq = queues_[static_cast<std::size_t>(q)];
        if (mq.failed_corrupt) mq.failed = 0;  // a counter that is not a number starts again
        mq.failed_corrupt = false;
        mq.failed += n;
    }
    void count_succeeded(int q, long long n) {
        auto& mq = queues_[static_cast<std::size_t>(q)];
        if (mq.succeeded_corrupt) mq.succeeded = 0;
        mq.succeeded_corrupt = false;
        mq.succeeded += n;
    }
    void remove_waiting(const std::string& id) {
        auto& job = jobs_.at(id);
        auto& list = queues_[static_cast<std::size_t>(job.queue)].waiting[job.priority];
        list.erase(std::find(list.begin(), list.end(), id));
    }
    void release_unique(const std::string& id) {
        auto& job = jobs_.at(id);
        auto& unique = queues_[static_cast<std::size_t>(job.queue)].unique;
        if (!job.unique.empty() && unique.count(job.unique) && unique[job.unique] == id)
            unique.erase(job.unique);
    }
    void make_dead(const std::string& id) {
        jobs_.at(id).state = "dead";
        release_unique(id);
        ++events_["dead"];
    }
    // Succeeded and cancelled records are kept for the result TTL; with a TTL of 0 they go at
    // once, as if expired.
    void expire_final(const std::string& id) {
        if (ttl_ > 0ms) return;
        jobs_.erase(id);
        deleted_.insert(id);
        recently_gone_.push_back(id);
        if (recently_gone_.size() > 64) recently_gone_.pop_front();
        ++gone_count_;
        ++events_["expired"];
    }
    void make_cancelled(const std::string& id) {
        auto& job = jobs_.at(id);
        job.state = "cancelled";
        job.cancel = false;
        release_unique(id);
        ++events_["cancelled"];
        expire_final(id);
    }
    // Due scheduled jobs of queue q to the tail of their lists, oldest due first (ties by id,
    // as a sorted set orders them).
    void promote_due(int q) {
        std::vector<std::pair<long long, std::string>> due;
        for (const auto& [id, job] : jobs_)
            if (job.queue == q && job.state == "scheduled" && !job.far)
                due.emplace_back(*job.due, id);
        std::sort(due.begin(), due.end());
        for (const auto& [when, id] : due) {
            if (unreadable(jobs_.at(id)))
                quarantine(id, false);
            else
                push_waiting(id, false);
        }
    }
    std::string holder_check(const std::string& id, const std::string& token) {
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return "lost";
        const auto& job = it->second;
        if (job.corrupt == "type") return "corrupt";  // no token can be read from it
        if (job.settled == token) return "duplicate";
        if (job.token != token) return "lost";
        if (unreadable(job)) return "corrupt";
        if (job.state == "running" || job.state == "waiting" || job.state == "dead") return "held";
        return "lost";
    }
    // Its record cannot be read as a job's (every script but for the payload, which only a
    // claim and a requeue need).
    static bool unreadable(const ModelJob& job) {
        return !job.corrupt.empty() && job.corrupt != "payload";
    }
    // Whether the scripts read it as ended: a record whose state cannot be read never is.
    static bool reads_final(const ModelJob& job) {
        if (job.corrupt == "type" || job.corrupt == "state") return false;
        return job.state == "succeeded" || job.state == "dead" || job.state == "cancelled";
    }
    // Whether a --unique key naming this job keeps another from being made (or requeued).
    static bool holds_unique(const ModelJob& job) {
        return is_live(job.state) && job.corrupt != "type" && job.corrupt != "state";
    }
    // dead_corrupt: a dead letter with the reason `corrupt`, taken out of its waiting list when
    // `detach` (a claim, a promotion, the reaper, a purge took it out already). It keeps its
    // --unique key's name, holds no lease, and keeps its settler unless it was made afresh.
    void quarantine(const std::string& id, bool detach) {
        auto& job = jobs_.at(id);
        if (detach && job.state == "waiting") remove_waiting(id);
        if (job.corrupt == "type") {
            job.no_payload = true;
            job.settled.clear();
            job.worker.clear();
            job.attempts = 0;
        }
        if (job.corrupt == "state" || job.corrupt == "type") job.corrupt.clear();
        job.state = "dead";
        job.quarantined = true;
        job.token.clear();
        ++events_["quarantined"];
    }
    // A queue whose meta is damaged refuses the call, having changed nothing.
    std::string expect_refusal(const std::function<void()>& call, std::string what,
                               std::string& error) {
        try {
            call();
            error = "a damaged queue did not refuse";
        } catch (const queue::QueueDamagedError&) {
            ++events_["damaged queue refused"];
        }
        return what + " (damaged: refused)";
    }
    void detach_held(const std::string& id) {
        auto& job = jobs_.at(id);
        if (job.state == "waiting") remove_waiting(id);
        // running and dead: leaving the state is enough for the model
    }

    // --- operations ---
    std::string op_enqueue(std::string& error);
    std::string op_claim(std::string& error);
    bool pick_token(int& q, std::string& id, std::string& token);
    std::string op_complete(std::string& error);
    // The model's side of one success report (complete, or one a claim carries): checks the
    // server's verdict `got` against `verdict` (holder_check before the report) and applies it.
    bool settle_success(int q, const std::string& id, const std::string& token,
                        const std::string& verdict, Settle got, std::string& error);
    std::string op_fail(std::string& error);
    std::string op_release(std::string& error);
    std::string op_renew(std::string& error);
    std::string op_reap(std::string& error);
    std::string op_cancel(std::string& error);
    std::string op_requeue(std::string& error);
    std::string op_delete(std::string& error);
    std::string op_pause(std::string& error);
    std::string op_purge(std::string& error);
    std::string op_corrupt(std::string& error);
    std::vector<std::string> dead_oldest(int q, std::size_t n);

    std::string ns_;
    std::mt19937_64 rng_;
    std::mt19937_64 round_rng_;  // what a claim carries (op_claim)
    std::vector<redis::Connection> connections_;
    std::optional<redis::Connection> checker_;
    std::vector<queue::QueueKeys> keys_;
    int connection_ = 0;

    std::map<std::string, ModelJob> jobs_;
    std::set<std::string> deleted_;          // ids whose record is gone (deleted, expired)
    std::deque<std::string> recently_gone_;  // checked to have no keys left
    std::map<std::string, int> events_;      // how often each interesting case happened
    int rounds_ = 0;                         // claims made, for their token bases
    Millis ttl_ = Engine::long_ttl;          // result TTL of this step's operation
    std::array<ModelQueue, queue_count> queues_;
    std::vector<Issued> issued_;
    long long created_ = 0;
    long long gone_count_ = 0;  // deletions and expiries, recreated ids included
    long long next_id_ = 0;
};

std::string ModelRun::op_enqueue(std::string& error) {
    int q = pick(queue_count);
    auto& mq = queues_[static_cast<std::size_t>(q)];
    bool caller = chance(0.25);
    long long priority = priorities_used[static_cast<std::size_t>(pick(3))];
    long long max_attempts = 1 + pick(3);
    bool far = chance(0.2);
    std::string unique = chance(0.3) ? unique_keys[static_cast<std::size_t>(pick(4))] : "";
    std::string prefix = "q" + std::to_string(q) + "-";

    // Ids of this queue that exist or existed: a caller may name them again.
    std::vector<std::string> known;
    for (const auto& [id, job] : jobs_)
        if (job.queue == q) known.push_back(id);
    for (const auto& id : deleted_)
        if (id.starts_with(prefix)) known.push_back(id);

    std::vector<std::pair<std::string, std::string>> batch;
    int n = 1 + pick(3);
    for (int i = 0; i < n; ++i) {
        bool reuse = !known.empty() && (caller ? chance(0.6) : chance(0.03));
        bool room = live_count() + batch.size() < max_live_jobs &&
                    static_cast<std::size_t>(next_id_) < max_created_ids;
        if (!reuse && !room) continue;
        std::string id = reuse ? any_of(known) : prefix + std::to_string(next_id_++);
        batch.emplace_back(id, "payload of " + id);
    }
    std::string what = fmt::format(
        "enqueue q{} {} jobs prio {} max {}{}{}{}", q, batch.size(), priority, max_attempts,
        far ? " far" : "", unique.empty() ? "" : " unique " + unique, caller ? " caller-ids" : "");
    if (batch.empty()) return what + " (nothing)";

    Options options;
    options.priority(priority).max_attempts(max_attempts).unique_key(unique).caller_ids(caller);
    if (far) options.delay(far_delay);
    if (mq.damaged)
        return expect_refusal(
            [&] { engine().enqueue(keys_[static_cast<std::size_t>(q)], batch, options); }, what,
            error);
    auto results = engine().enqueue(keys_[static_cast<std::size_t>(q)], batch, options);
    if (results.size() != batch.size()) {
        error = "wrong number of results";
        return what;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const auto& id = batch[i].first;
        what += " " + id;
        EnqueueStatus status = EnqueueStatus::created;
        std::string result_id = id;
        if (jobs_.count(id)) {
            status = caller ? EnqueueStatus::existing : EnqueueStatus::collision;
        } else if (!unique.empty() && mq.unique.count(unique)) {
            auto holder = jobs_.find(mq.unique[unique]);
            if (holder != jobs_.end() && holds_unique(holder->second)) {
                status = EnqueueStatus::existing;
                result_id = holder->first;
            }
        }
        if (results[i].status != status || results[i].id != result_id) {
            error = fmt::format("job {}: expected status {} id {}, got status {} id {}", id,
                                static_cast<int>(status), result_id,
                                static_cast<int>(results[i].status), results[i].id);
            return what;
        }
        if (status != EnqueueStatus::created) {
            ++events_[status == EnqueueStatus::existing ? "enqueue existing" : "enqueue collision"];
            continue;
        }
        ++created_;
        deleted_.erase(id);
        std::erase(recently_gone_, id);
        ModelJob job;
        job.queue = q;
        job.priority = priority;
        job.max_attempts = max_attempts;
        job.unique = unique;
        jobs_[id] = job;
        if (!unique.empty()) {
            if (mq.unique_damaged.erase(unique) > 0) ++events_["unique key replaced"];
            mq.unique[unique] = id;
        }
        if (far) {
            jobs_[id].state = "scheduled";
            jobs_[id].far = true;
        } else {
            push_waiting(id, false);
        }
    }
    return what;
}

std::string ModelRun::op_claim(std::string& error) {
    static const std::vector<std::vector<int>> orders{{0}, {1}, {0, 1}, {1, 0}};
    const auto& order = any_of(orders);
    std::string worker = "w" + std::to_string(pick(worker_count));
    std::size_t max_jobs = 1 + static_cast<std::size_t>(pick(3));
    bool short_one = chance(0.3);
    std::vector<queue::QueueKeys> claim_keys;
    for (int q : order)
        claim_keys.push_back(keys_[static_cast<std::size_t>(q)]);
    std::string what = fmt::format("claim [{}] by {} max {} lease {}", fmt::join(order, ","),
                                   worker, max_jobs, short_one ? "short" : "long");
    // Half the claims carry successes of their queues (one round: settled first, each on its
    // own), judged by the model in order before the claim's jobs.
    struct Carried {
        int q;
        std::string id, token, result;
    };
    std::vector<Carried> carried;
    std::vector<queue::ClaimSuccess> successes;
    // Drawn from a stream of their own: the rest of the run draws as before the rounds.
    std::swap(rng_, round_rng_);
    if (chance(0.5)) {
        for (int n = 1 + pick(3); n > 0; --n) {
            int q = 0;
            std::string id, token;
            if (!pick_token(q, id, token)) break;
            auto at = std::find(order.begin(), order.end(), q);
            if (at == order.end()) continue;
            carried.push_back({q, id, token, "result " + id});
        }
        for (const auto& c : carried) {
            auto index = std::find(order.begin(), order.end(), c.q) - order.begin();
            successes.push_back({static_cast<std::size_t>(index), {c.id, c.token, c.result}});
            what += fmt::format(" carrying {} token {}", c.id, c.token);
        }
    }
    std::swap(rng_, round_rng_);
    std::string token_base = "round" + std::to_string(++rounds_);
    auto result = queue::parse_claim(engine().run(
        queue::claim_call(claim_keys, worker, token_base, short_one ? short_lease : long_lease,
                          max_jobs, 0, successes, ttl_)));
    if (result.settled.size() != carried.size()) {
        error = fmt::format("{} statuses for {} successes", result.settled.size(), carried.size());
        return what;
    }
    for (int q : order)
        for (std::size_t i = 0; i < carried.size(); ++i)
            if (carried[i].q == q) {
                // Judged when its turn comes: an earlier success of the batch may change it.
                auto verdict = holder_check(carried[i].id, carried[i].token);
                if (!settle_success(q, carried[i].id, carried[i].token, verdict, result.settled[i],
                                    error))
                    return what;
                ++events_["round settles"];
            }

    struct Expected {
        std::size_t index;
        std::string id;
    };
    std::vector<Expected> expected;
    std::vector<std::size_t> expected_damaged;
    // A claim reads a queue's ticks (for its hint) only when it took fewer jobs than it asked
    // for, after serving every queue: damaged ticks are named then, and the queue is served.
    // Its rate log is read only under a rate limit, which the model never sets (limits that are
    // not numbers are none): a damaged one changes nothing.
    std::vector<std::size_t> ticks_damaged;
    bool any_scheduled = false;
    for (std::size_t i = 0; i < order.size(); ++i) {
        int q = order[i];
        auto& mq = queues_[static_cast<std::size_t>(q)];
        if (mq.damaged) {
            expected_damaged.push_back(i);
            continue;
        }
        if (mq.claim_damage == "ticks") ticks_damaged.push_back(i);
        if (mq.paused) continue;
        promote_due(q);
        while (expected.size() < max_jobs) {
            auto top = std::find_if(mq.waiting.rbegin(), mq.waiting.rend(),
                                    [](const auto& entry) { return !entry.second.empty(); });
            if (top == mq.waiting.rend()) break;
            auto id = top->second.front();
            top->second.pop_front();
            // A record that cannot be run is quarantined where the claim meets it.
            const auto& job = jobs_.at(id);
            if (unreadable(job) || job.corrupt == "payload") {
                quarantine(id, false);
                continue;
            }
            expected.push_back({i, id});
        }
        for (const auto& [id, job] : jobs_)
            if (job.queue == q && job.state == "scheduled") any_scheduled = true;
    }
    if (result.jobs.size() != expected.size()) {
        error = fmt::format("expected {} jobs, got {}", expected.size(), result.jobs.size());
        return what;
    }
    if (expected.size() < max_jobs) {
        expected_damaged.insert(expected_damaged.end(), ticks_damaged.begin(), ticks_damaged.end());
        std::sort(expected_damaged.begin(), expected_damaged.end());
    }
    std::vector<std::size_t> damaged;
    for (const auto& found : result.damaged)
        damaged.push_back(found.queue_index);
    if (damaged != expected_damaged) {
        error = fmt::format("the claim named queues [{}] damaged, expected [{}]",
                            fmt::join(damaged, " "), fmt::join(expected_damaged, " "));
        return what;
    }
    if (!damaged.empty()) ++events_["claim skips a damaged queue"];
    if (result.next_due.has_value() != any_scheduled) {
        error = any_scheduled ? "no wait hint though jobs are scheduled"
                              : "a wait hint though nothing is scheduled";
        return what;
    }
    std::string base;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const auto& got = result.jobs[i];
        what += " " + got.id;
        auto& job = jobs_.at(expected[i].id);
        if (got.id != expected[i].id || got.queue_index != expected[i].index ||
            got.attempt != job.attempts + 1 || got.max_attempts != job.max_attempts ||
            got.payload != "payload of " + got.id) {
            error = fmt::format(
                "job {}: expected {} (queue {}, attempt {}), got {} (queue {}, "
                "attempt {})",
                i, expected[i].id, expected[i].index, job.attempts + 1, got.id, got.queue_index,
                got.attempt);
            return what;
        }
        auto dot = got.token.rfind('.');
        if (dot == std::string::npos || got.token.substr(dot + 1) != std::to_string(i + 1) ||
            (i > 0 && got.token.substr(0, dot) != base)) {
            error = "unexpected token " + got.token;
            return what;
        }
        base = got.token.substr(0, dot);
        job.state = "running";
        job.attempts += 1;
        job.token = got.token;
        job.settled.clear();
        job.worker = worker;
        job.short_lease = short_one;
        issued_.push_back({job.queue, got.id, got.token});
    }
    return what;
}

bool ModelRun::pick_token(int& q, std::string& id, std::string& token) {
    int roll = pick(100);
    std::vector<std::string> candidates;
    if (roll < 65) {
        for (const auto& [jid, job] : jobs_)
            if (job.state == "running") candidates.push_back(jid);
    } else if (roll < 80) {  // holders whose lease lapsed and who were not replaced
        for (const auto& [jid, job] : jobs_)
            if ((job.state == "waiting" || job.state == "dead") && !job.token.empty() &&
                job.settled.empty())
                candidates.push_back(jid);
    }
    if (!candidates.empty()) {
        id = any_of(candidates);
        q = jobs_.at(id).queue;
        token = jobs_.at(id).token;
        return true;
    }
    if (issued_.empty()) return false;
    const auto& any = any_of(issued_);
    q = any.queue;
    id = any.id;
    token = any.token;
    return true;
}

std::string ModelRun::op_complete(std::string& error) {
    int q = 0;
    std::string id, token;
    if (!pick_token(q, id, token)) return "complete (nothing held)";
    std::string verdict = holder_check(id, token);
    std::string what = fmt::format("complete {} token {} ({})", id, token, verdict);
    if (queues_[static_cast<std::size_t>(q)].damaged)
        return expect_refusal(
            [&] {
                engine().complete(keys_[static_cast<std::size_t>(q)], id, token, "result " + id,
                                  ttl_);
            },
            what, error);
    auto got =
        engine().complete(keys_[static_cast<std::size_t>(q)], id, token, "result " + id, ttl_);
    settle_success(q, id, token, verdict, got, error);
    return what;
}

bool ModelRun::settle_success(int q, const std::string& id, const std::string& token,
                              const std::string& verdict, Settle got, std::string& error) {
    // A claim judges no success of a queue whose meta it cannot read (complete refuses it).
    auto expected = queues_[static_cast<std::size_t>(q)].damaged ? Settle::refused
                    : verdict == "held"                          ? Settle::done
                    : verdict == "duplicate"                     ? Settle::duplicate
                    : verdict == "corrupt"                       ? Settle::quarantined
                                                                 : Settle::refused;
    if (got != expected) {
        error = fmt::format("{} (token {}): expected settle {}, got {}", id, token,
                            static_cast<int>(expected), static_cast<int>(got));
        return false;
    }
    if (queues_[static_cast<std::size_t>(q)].damaged) return true;
    ++events_["complete " + verdict];
    if (verdict == "corrupt") quarantine(id, true);
    if (verdict == "held") {
        auto& job = jobs_.at(id);
        if (job.state != "running") ++events_["lapsed holder settles"];
        detach_held(id);
        job.state = "succeeded";
        job.settled = token;
        job.cancel = false;
        count_succeeded(q, 1);
        release_unique(id);
        expire_final(id);
    }
    return true;
}

std::string ModelRun::op_fail(std::string& error) {
    int q = 0;
    std::string id, token;
    if (!pick_token(q, id, token)) return "fail (nothing held)";
    int kind = pick(10);  // 0-4 retry now, 5-6 retry in the far future, 7-9 permanent
    std::optional<Millis> delay;
    if (kind < 5)
        delay = 0ms;
    else if (kind < 7)
        delay = far_delay;
    std::string verdict = holder_check(id, token);
    std::string what = fmt::format("fail {} token {} ({}) {}", id, token, verdict,
                                   !delay     ? "permanent"
                                   : kind < 5 ? "retry now"
                                              : "retry later");
    if (queues_[static_cast<std::size_t>(q)].damaged)
        return expect_refusal(
            [&] {
                engine().fail(keys_[static_cast<std::size_t>(q)], id, token, delay, "it broke",
                              ttl_);
            },
            what, error);
    auto got =
        engine().fail(keys_[static_cast<std::size_t>(q)], id, token, delay, "it broke", ttl_);
    auto job_it = jobs_.find(id);
    if (verdict == "corrupt") {
        ++events_["fail corrupt"];
        quarantine(id, true);
        if (got.settle != Settle::quarantined || got.state != JobState::dead)
            error = fmt::format("expected quarantined dead, got {} {}",
                                static_cast<int>(got.settle), state_name(got.state));
        return what;
    }
    if (verdict != "held") {
        ++events_["fail " + verdict];
        auto settle = verdict == "duplicate" ? Settle::duplicate : Settle::refused;
        // A state workq never writes (on a record nobody quarantined yet: this holder holds
        // it no more) is told as it is: unknown.
        std::string state = job_it == jobs_.end() || job_it->second.corrupt == "state"
                                ? "unknown"
                                : job_it->second.state;
        if (got.settle != settle || state_name(got.state) != state)
            error = fmt::format("expected settle {} state {}, got {} {}", static_cast<int>(settle),
                                state, static_cast<int>(got.settle), state_name(got.state));
        return what;
    }
    auto& job = job_it->second;
    const bool reaped = job.state != "running";
    if (reaped) ++events_["lapsed holder settles"];
    detach_held(id);
    job.settled = token;
    // A cancelled job's end is not a failed attempt: only real failures count, and the attempt
    // of a job the reaper took back was counted by the reaper already.
    if (!job.cancel && !reaped) count_failed(q, 1);
    std::string state;
    if (job.cancel) {
        state = "cancelled";
        make_cancelled(id);
    } else if (!delay || job.attempts >= job.max_attempts) {
        state = "dead";
        make_dead(id);
    } else {
        state = "scheduled";
        job.state = state;
        job.far = kind >= 5;
        job.due = got.due_ms;
        ++events_["retry scheduled"];
    }
    if (got.settle != Settle::done || state_name(got.state) != state)
        error = fmt::format("expected done {}, got {} {}", state, static_cast<int>(got.settle),
                            state_name(got.state));
    return what;
}

std::string ModelRun::op_release(std::string& error) {
    int q = 0;
    std::string id, token;
    if (!pick_token(q, id, token)) return "release (nothing held)";
    std::string verdict = holder_check(id, token);
    // Only a running job can be given back; one the reaper took back stays as it left it.
    if (verdict == "held" && jobs_.at(id).state != "running") verdict = "reaped";
    std::string what = fmt::format("release {} token {} ({})", id, token, verdict);
    if (queues_[static_cast<std::size_t>(q)].damaged)
        return expect_refusal(
            [&] { engine().release(keys_[static_cast<std::size_t>(q)], id, token, ttl_); }, what,
            error);
    auto got = engine().release(keys_[static_cast<std::size_t>(q)], id, token, ttl_);
    auto expected = verdict == "held"      ? Settle::done
                    : verdict == "corrupt" ? Settle::quarantined
                                           : Settle::refused;
    if (verdict == "corrupt") quarantine(id, true);
    if (got != expected) {
        error = fmt::format("expected settle {}, got {}", static_cast<int>(expected),
                            static_cast<int>(got));
        return what;
    }
    ++events_["release " + verdict];
    if (verdict == "held") {
        detach_held(id);
        auto& job = jobs_.at(id);
        job.token.clear();
        job.worker.clear();
        job.attempts = std::max(0LL, job.attempts - 1);
        if (job.cancel)
            make_cancelled(id);
        else
            push_waiting(id, true);
    }
    return what;
}

std::string ModelRun::op_renew(std::string& error) {
    int q = 0;
    std::string id, token;
    if (!pick_token(q, id, token)) return "renew (nothing held)";
    bool short_one = chance(0.3);
    std::string verdict = holder_check(id, token);
    std::string what =
        fmt::format("renew {} token {} ({}) {}", id, token, verdict, short_one ? "short" : "long");
    if (queues_[static_cast<std::size_t>(q)].damaged)
        return expect_refusal(
            [&] {
                engine().renew(keys_[static_cast<std::size_t>(q)], id, token,
                               short_one ? short_lease : long_lease);
            },
            what, error);
    auto got = engine().renew(keys_[static_cast<std::size_t>(q)], id, token,
                              short_one ? short_lease : long_lease);
    auto expected = queue::RenewStatus::lost;
    if (verdict == "corrupt") {
        quarantine(id, true);
        expected = queue::RenewStatus::quarantined;
    }
    if (verdict == "held" && jobs_.at(id).state != "dead") {
        auto& job = jobs_.at(id);
        if (job.state == "waiting") {
            remove_waiting(id);
            ++events_["lapsed holder renews"];
        }
        job.state = "running";
        job.short_lease = short_one;
        expected = job.cancel ? queue::RenewStatus::cancel_requested : queue::RenewStatus::renewed;
    }
    if (got != expected)
        error = fmt::format("expected renew status {}, got {}", static_cast<int>(expected),
                            static_cast<int>(got));
    return what;
}

std::string ModelRun::op_reap(std::string& error) {
    int q = pick(queue_count);
    std::string what = fmt::format("reap q{}", q);

    // Short leases lapse at once; wait until the server's clock says so for each of them.
    long long latest = 0;
    for (const auto& [id, job] : jobs_)
        if (job.queue == q && job.state == "running" && job.short_lease)
            latest = std::max(latest, job.deadline);
    if (latest > 0 && !wait_until([&] { return raw().server_now_ms() > latest; })) {
        error = "the server's clock did not pass the lease deadline";
        return what;
    }
    if (queues_[static_cast<std::size_t>(q)].damaged)
        return expect_refusal(
            [&] { engine().reap(keys_[static_cast<std::size_t>(q)], 1000, ttl_); }, what, error);
    auto got = engine().reap(keys_[static_cast<std::size_t>(q)], 1000, ttl_);

    promote_due(q);
    // A job comes back only when its own lease lapsed: long leases never do in this test.
    std::vector<std::pair<long long, std::string>> lapsed;
    for (const auto& [id, job] : jobs_)
        if (job.queue == q && job.state == "running" && job.short_lease)
            lapsed.emplace_back(job.deadline, id);
    std::sort(lapsed.begin(), lapsed.end());
    std::vector<std::string> order;
    for (const auto& entry : lapsed)
        order.push_back(entry.second);
    long long failed = 0;
    for (const auto& id : order) {
        auto& job = jobs_.at(id);
        what += " " + id;
        if (unreadable(job)) {
            quarantine(id, false);
            continue;
        }
        ++failed;
        ++events_["reaped lapsed"];
        if (job.cancel)
            make_cancelled(id);
        else if (job.attempts >= job.max_attempts)
            make_dead(id);
        else
            push_waiting(id, true);
    }
    if (failed > 0) count_failed(q, failed);
    if (got != static_cast<long long>(order.size()))
        error = fmt::format("expected {} jobs reaped, got {}", order.size(), got);
    return what;
}

std::string ModelRun::op_cancel(std::string& error) {
    int q = pick(queue_count);
    auto all = ids_where(q, [](const ModelJob&) { return true; });
    auto live = ids_where(q, [](const ModelJob& job) { return is_live(job.state); });
    std::vector<std::string> ids;
    int n = 1 + pick(3);
    for (int i = 0; i < n; ++i) {
        if (!live.empty() && chance(0.7))
            ids.push_back(any_of(live));
        else if (!all.empty() && chance(0.8))
            ids.push_back(any_of(all));
        else
            ids.push_back("q" + std::to_string(q) + "-nope");
    }
    std::string what = fmt::format("cancel q{} {}", q, fmt::join(ids, " "));
    if (queues_[static_cast<std::size_t>(q)].damaged)
        return expect_refusal(
            [&] { engine().cancel(keys_[static_cast<std::size_t>(q)], ids, ttl_); }, what, error);
    auto got = engine().cancel(keys_[static_cast<std::size_t>(q)], ids, ttl_);
    if (got.size() != ids.size()) {
        error = "wrong number of results";
        return what;
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const auto& id = ids[i];
        auto it = jobs_.find(id);
        queue::CancelStatus expected = queue::CancelStatus::unknown;
        std::string state = "unknown";
        if (it != jobs_.end()) {
            auto& job = it->second;
            state = job.state;
            if (reads_final(job)) {
                expected = queue::CancelStatus::finished;
            } else if (unreadable(job)) {
                quarantine(id, true);
                expected = queue::CancelStatus::finished;
                state = "dead";
            } else if (job.state == "waiting") {
                remove_waiting(id);
                make_cancelled(id);
                expected = queue::CancelStatus::cancelled;
                state = "cancelled";
            } else if (job.state == "scheduled") {
                make_cancelled(id);
                expected = queue::CancelStatus::cancelled;
                state = "cancelled";
            } else if (job.state == "running") {
                job.cancel = true;
                ++events_["cancel flagged"];
                expected = queue::CancelStatus::flagged;
            } else {
                expected = queue::CancelStatus::finished;
            }
        }
        if (got[i].status != expected || state_name(got[i].state) != state) {
            error = fmt::format("{}: expected status {} state {}, got {} {}", id,
                                static_cast<int>(expected), state, static_cast<int>(got[i].status),
                                state_name(got[i].state));
            return what;
        }
    }
    return what;
}

std::vector<std::string> ModelRun::dead_oldest(int q, std::size_t n) {
    std::vector<std::pair<long long, std::string>> dead;
    for (const auto& [id, job] : jobs_)
        if (job.queue == q && job.state == "dead") dead.emplace_back(job.died, id);
    std::sort(dead.begin(), dead.end());
    std::vector<std::string> out;
    for (std::size_t i = 0; i < std::min(n, dead.size()); ++i)
        out.push_back(dead[i].second);
    return out;
}

std::string ModelRun::op_requeue(std::string& error) {
    int q = pick(queue_count);
    auto dead = ids_where(q, [](const ModelJob& job) { return job.state == "dead"; });
    auto all = ids_where(q, [](const ModelJob&) { return true; });
    std::vector<std::string> ids;
    std::size_t oldest = 0;
    if (chance(0.3)) {
        oldest = 1 + static_cast<std::size_t>(pick(2));
    } else {
        if (!dead.empty()) ids.push_back(any_of(dead));
        if (!all.empty() && chance(0.3)) ids.push_back(any_of(all));
        if (ids.empty()) return "requeue (nothing dead)";
    }
    auto expected_ids = oldest ? dead_oldest(q, oldest) : ids;
    std::string what = fmt::format(
        "requeue q{} {}", q,
        oldest ? fmt::format("oldest {}", oldest) : fmt::format("{}", fmt::join(ids, " ")));
    if (queues_[static_cast<std::size_t>(q)].damaged)
        return expect_refusal(
            [&] { engine().requeue(keys_[static_cast<std::size_t>(q)], ids, oldest); }, what,
            error);
    auto got = engine().requeue(keys_[static_cast<std::size_t>(q)], ids, oldest);
    if (got.size() != expected_ids.size()) {
        error = fmt::format("expected {} outcomes, got {}", expected_ids.size(), got.size());
        return what;
    }
    for (std::size_t i = 0; i < expected_ids.size(); ++i) {
        const auto& id = expected_ids[i];
        auto it = jobs_.find(id);
        bool ok = it != jobs_.end() && it->second.state == "dead";
        // A record with nothing to run (not a hash, no payload, a number workq never writes)
        // stays dead: corrupt. Its state and attempts are written afresh.
        bool corrupt = ok && (it->second.corrupt == "type" || it->second.corrupt == "prio" ||
                              it->second.corrupt == "max" || it->second.corrupt == "payload" ||
                              it->second.no_payload);
        if (corrupt) ok = false;
        // A letter whose --unique key another live job holds stays dead.
        std::string holder;
        if (ok && !it->second.unique.empty()) {
            auto& unique = queues_[static_cast<std::size_t>(q)].unique;
            auto named = unique.find(it->second.unique);
            if (named != unique.end() && named->second != id) {
                auto other = jobs_.find(named->second);
                if (other != jobs_.end() && holds_unique(other->second)) {
                    ok = false;
                    holder = named->second;
                }
            }
        }
        auto expected_status = ok                ? queue::RequeueStatus::requeued
                               : corrupt         ? queue::RequeueStatus::corrupt
                               : !holder.empty() ? queue::RequeueStatus::unique_held
                                                 : queue::RequeueStatus::not_dead;
        if (got[i].id != id || got[i].status != expected_status || got[i].holder != holder) {
            error = fmt::format("expected {} status {} {}, got {} {} {}", id,
                                static_cast<int>(expected_status), holder, got[i].id,
                                static_cast<int>(got[i].status), got[i].holder);
            return what;
        }
        if (corrupt) ++events_["requeue keeps a corrupt letter"];
        if (!ok) continue;
        auto& job = it->second;
        job.token.clear();
        job.settled.clear();
        job.worker.clear();
        job.cancel = false;
        job.attempts = 0;
        if (!job.corrupt.empty() || job.quarantined) ++events_["requeued a quarantined letter"];
        job.corrupt.clear();  // attempts and state are written afresh
        job.quarantined = false;
        auto& mq = queues_[static_cast<std::size_t>(q)];
        if (!job.unique.empty()) {
            mq.unique[job.unique] = id;
            mq.unique_damaged.erase(job.unique);
        }
        push_waiting(id, false);
        ++events_["requeued"];
    }
    return what;
}

std::string ModelRun::op_delete(std::string& error) {
    int q = pick(queue_count);
    auto dead = ids_where(q, [](const ModelJob& job) { return job.state == "dead"; });
    auto all = ids_where(q, [](const ModelJob&) { return true; });
    std::vector<std::string> ids;
    std::size_t oldest = 0;
    if (chance(0.3)) {
        oldest = 1;
    } else {
        if (!dead.empty()) ids.push_back(any_of(dead));
        if (!all.empty() && chance(0.3)) ids.push_back(any_of(all));
        if (ids.empty()) return "delete (nothing dead)";
    }
    auto expected_ids = oldest ? dead_oldest(q, oldest) : ids;
    std::string what = fmt::format(
        "delete q{} {}", q,
        oldest ? fmt::format("oldest {}", oldest) : fmt::format("{}", fmt::join(ids, " ")));
    if (queues_[static_cast<std::size_t>(q)].damaged)
        return expect_refusal(
            [&] { engine().delete_dead(keys_[static_cast<std::size_t>(q)], ids, oldest); }, what,
            error);
    auto got = engine().delete_dead(keys_[static_cast<std::size_t>(q)], ids, oldest);
    if (got.size() != expected_ids.size()) {
        error = fmt::format("expected {} outcomes, got {}", expected_ids.size(), got.size());
        return what;
    }
    for (std::size_t i = 0; i < expected_ids.size(); ++i) {
        const auto& id = expected_ids[i];
        auto it = jobs_.find(id);
        bool ok = it != jobs_.end() && it->second.state == "dead";
        if (got[i].id != id || got[i].ok != ok) {
            error = fmt::format("expected {} {}, got {} {}", id, ok, got[i].id, got[i].ok);
            return what;
        }
        if (!ok) continue;
        jobs_.erase(it);
        deleted_.insert(id);
        recently_gone_.push_back(id);
        if (recently_gone_.size() > 64) recently_gone_.pop_front();
        ++gone_count_;
        ++events_["deleted"];
    }
    return what;
}

std::string ModelRun::op_pause(std::string& error) {
    int q = pick(queue_count);
    auto& mq = queues_[static_cast<std::size_t>(q)];
    // Mostly resume a paused queue, so that queues are not paused for long.
    bool pause = mq.paused ? chance(0.1) : chance(0.9);
    std::string what = fmt::format("{} q{}", pause ? "pause" : "resume", q);
    if (mq.damaged)
        return expect_refusal(
            [&] { engine().set_paused(keys_[static_cast<std::size_t>(q)], pause); }, what, error);
    auto got = engine().set_paused(keys_[static_cast<std::size_t>(q)], pause);
    long long expected = pause != mq.paused ? 1 : 0;
    mq.paused = pause;
    if (got != expected) error = fmt::format("expected {}, got {}", expected, got);
    return what;
}

std::string ModelRun::op_purge(std::string& error) {
    int q = pick(queue_count);
    int which = pick(3);
    auto kind = which == 0   ? queue::PurgeWhich::waiting
                : which == 1 ? queue::PurgeWhich::scheduled
                             : queue::PurgeWhich::both;
    std::size_t batch = 1 + static_cast<std::size_t>(pick(8));
    std::string what = fmt::format("purge q{} {} batch {}", q,
                                   which == 0   ? "waiting"
                                   : which == 1 ? "scheduled"
                                                : "both",
                                   batch);
    if (queues_[static_cast<std::size_t>(q)].damaged)
        return expect_refusal(
            [&] { engine().purge(keys_[static_cast<std::size_t>(q)], kind, batch, ttl_); }, what,
            error);
    long long total = 0;
    for (int calls = 0;; ++calls) {
        if (calls > 200) {
            error = "purge does not end";
            return what;
        }
        auto step = engine().purge(keys_[static_cast<std::size_t>(q)], kind, batch, ttl_);
        if (step.cancelled > static_cast<long long>(batch)) {
            error = "a purge step cancelled more than its batch";
            return what;
        }
        total += step.cancelled;
        if (!step.more) break;
    }
    long long expected = 0;
    auto& mq = queues_[static_cast<std::size_t>(q)];
    promote_due(q);  // due jobs are waiting ones
    // A record that cannot be a job is quarantined, not counted.
    if (which != 1) {
        for (auto& [priority, list] : mq.waiting) {
            auto ids = std::vector<std::string>(list.begin(), list.end());
            list.clear();
            for (const auto& id : ids) {
                if (unreadable(jobs_.at(id))) {
                    quarantine(id, false);
                    continue;
                }
                make_cancelled(id);
                ++expected;
            }
        }
    }
    if (which != 0) {
        for (const auto& id :
             ids_where(q, [](const ModelJob& j) { return j.state == "scheduled"; })) {
            if (unreadable(jobs_.at(id))) {
                quarantine(id, false);
                continue;
            }
            make_cancelled(id);
            ++expected;
        }
    }
    if (total != expected) error = fmt::format("expected {} cancelled, got {}", expected, total);
    return what;
}

std::string ModelRun::op_corrupt(std::string& error) {
    int q = pick(queue_count);
    auto& mq = queues_[static_cast<std::size_t>(q)];
    const auto& k = keys_[static_cast<std::size_t>(q)];
    auto aside = k.prefix() + "meta-aside";
    // A damaged queue is mended soon: the meta put back as it was.
    if (mq.damaged && chance(0.5)) {
        raw().call({"DEL", k.meta()});
        if (raw().exists(aside)) raw().call({"RENAME", aside, k.meta()});
        mq.damaged = false;
        ++events_["damaged queue mended"];
        return fmt::format("mend q{}", q);
    }
    if (!mq.claim_damage.empty() && chance(0.5)) {
        raw().call({"DEL", k.prefix() + mq.claim_damage});
        ++events_["damaged " + mq.claim_damage + " mended"];
        return fmt::format("mend q{}: {}", q, std::exchange(mq.claim_damage, ""));
    }
    int roll = pick(100);
    if (roll < 10 && mq.claim_damage.empty()) {
        static const std::vector<std::string> structures{"starts", "ticks", "watchers"};
        mq.claim_damage = any_of(structures);
        raw().call({"SET", k.prefix() + mq.claim_damage, "x"});
        ++events_["damaged " + mq.claim_damage];
        return fmt::format("damage q{}: {} as a string", q, mq.claim_damage);
    }
    if (roll < 14 && !mq.damaged) {
        // Limits workq never writes are none: the claims go on as without.
        raw().call({"HSET", k.meta(), "limit_rate", "nan", "limit_window", "x", "limit_concurrency",
                    "1e9"});
        ++events_["limits damaged"];
        return fmt::format("damage q{}: limits that are not numbers", q);
    }
    if (roll < 22 && !mq.damaged) {
        if (raw().exists(k.meta())) raw().call({"RENAME", k.meta(), aside});
        raw().call({"SET", k.meta(), "x"});
        mq.damaged = true;
        ++events_["queue damaged"];
        return fmt::format("damage q{}: meta as a string", q);
    }
    if (roll < 28) {
        raw().call({"DEL", k.wake()});
        raw().call({"SET", k.wake(), "x"});
        return fmt::format("damage q{}: wake as a string", q);
    }
    if (roll < 34 && !mq.damaged) {
        bool failed = chance(0.5);
        raw().call({"HSET", k.meta(), failed ? "failed" : "succeeded", "x"});
        (failed ? mq.failed_corrupt : mq.succeeded_corrupt) = true;
        return fmt::format("damage q{}: meta {} x", q, failed ? "failed" : "succeeded");
    }
    if (roll < 42 && !mq.unique.empty()) {
        std::vector<std::string> named;
        for (const auto& [key, id] : mq.unique)
            named.push_back(key);
        auto key = any_of(named);
        raw().call({"DEL", k.unique(key)});
        raw().call({"HSET", k.unique(key), "f", "x"});
        mq.unique.erase(key);
        mq.unique_damaged.insert(key);
        ++events_["unique key damaged"];
        return fmt::format("damage q{}: unique:{} as a hash", q, key);
    }
    // A job record, in any state but ended.
    auto candidates = ids_where(q, [](const ModelJob& job) {
        return job.corrupt.empty() && !job.no_payload &&
               (is_live(job.state) || job.state == "dead");
    });
    if (candidates.empty()) return fmt::format("damage q{}: no job to damage", q);
    auto id = any_of(candidates);
    auto& job = jobs_.at(id);
    static const std::vector<std::string> kinds{"type",  "prio",    "attempts", "max",
                                                "state", "payload", "errors"};
    auto kind = any_of(kinds);
    if (kind == "type") {
        raw().call({"DEL", k.job(id)});
        raw().call({"SET", k.job(id), "x"});
    } else if (kind == "prio") {
        raw().call({"HSET", k.job(id), "prio", "nan"});
    } else if (kind == "attempts") {
        raw().call({"HSET", k.job(id), "attempts", "x"});
    } else if (kind == "max") {
        raw().call({"HSET", k.job(id), "max", "-1"});
    } else if (kind == "state") {
        raw().call({"HSET", k.job(id), "state", "bogus"});
    } else if (kind == "payload") {
        raw().call({"HDEL", k.job(id), "payload"});
    } else {
        // Replaced by the next error it records: nothing else to model.
        raw().call({"DEL", k.errors(id)});
        raw().call({"SET", k.errors(id), "x"});
    }
    if (kind != "errors") job.corrupt = kind;
    ++events_["record damaged: " + kind];
    (void)error;
    return fmt::format("damage {} ({}): {}", id, job.state, kind);
}

std::string ModelRun::check() {
    auto& c = *checker_;
    // One pipelined round trip: per queue, its structures, counters and unique keys; then every
    // job record the model knows and every id it deleted.
    std::vector<std::vector<std::string>> commands;
    commands.push_back({"TIME"});
    for (std::size_t qi = 0; qi < keys_.size(); ++qi) {
        const auto& k = keys_[qi];
        const auto& mq = queues_[qi];
        commands.push_back({"ZRANGE", k.priorities(), "0", "-1"});
        for (auto priority : priorities_used)
            commands.push_back({"LRANGE", k.waiting(priority), "0", "-1"});
        commands.push_back({"ZRANGE", k.scheduled(), "0", "-1", "WITHSCORES"});
        commands.push_back({"ZRANGE", k.running(), "0", "-1", "WITHSCORES"});
        commands.push_back({"ZRANGE", k.dead(), "0", "-1", "WITHSCORES"});
        // A damaged queue's meta is aside, as it was.
        commands.push_back({"HMGET", mq.damaged ? k.prefix() + "meta-aside" : k.meta(), "succeeded",
                            "failed", "paused"});
        for (const char* unique : unique_keys)
            commands.push_back(
                {mq.unique_damaged.count(unique) ? "TYPE" : "GET", k.unique(unique)});
    }
    std::vector<std::string> ids;
    for (const auto& [id, job] : jobs_) {
        ids.push_back(id);
        const auto& k = keys_[static_cast<std::size_t>(job.queue)];
        if (job.corrupt == "type")
            commands.push_back({"TYPE", k.job(id)});
        else
            commands.push_back({"HMGET", k.job(id), "state", "attempts", "token", "settled",
                                "cancel", "worker", "reason"});
    }
    for (const auto& id : recently_gone_) {
        const auto& k = keys_[id.starts_with("q0-") ? 0 : 1];
        commands.push_back({"EXISTS", k.job(id), k.errors(id)});
    }
    for (const auto& command : commands) {
        std::vector<std::string_view> args(command.begin(), command.end());
        c.append(args);
    }
    std::vector<redis::Reply> replies;
    for (std::size_t i = 0; i < commands.size(); ++i)
        replies.push_back(c.read_reply());
    for (std::size_t i = 0; i < replies.size(); ++i)
        if (replies[i].is_error())
            return fmt::format("{} failed: {}", commands[i][0], replies[i].text);

    std::size_t r = 0;
    long long now = replies[r].at(0).as_integer() * 1000 + replies[r].at(1).as_integer() / 1000;
    ++r;
    auto strings = [](const redis::Reply& reply) {
        std::vector<std::string> out;
        for (const auto& item : reply.as_array())
            out.push_back(item.as_string());
        return out;
    };
    auto scored = [](const redis::Reply& reply) {
        std::map<std::string, long long> out;
        const auto& items = reply.as_array();
        for (std::size_t i = 0; i + 1 < items.size(); i += 2)
            out[items[i].as_string()] = std::llround(std::stod(items[i + 1].as_string()));
        return out;
    };

    // Where each id appears, according to the raw structures alone.
    std::map<std::string, std::vector<std::string>> places;
    for (int q = 0; q < queue_count; ++q) {
        const auto& mq = queues_[static_cast<std::size_t>(q)];
        auto priorities = strings(replies[r++]);
        std::set<std::string> expected_priorities;
        for (auto priority : priorities_used) {
            auto list = strings(replies[r++]);
            auto it = mq.waiting.find(priority);
            std::vector<std::string> expected;
            if (it != mq.waiting.end()) expected.assign(it->second.begin(), it->second.end());
            if (list != expected)
                return fmt::format("q{} waiting:{} is [{}], expected [{}]", q, priority,
                                   fmt::join(list, " "), fmt::join(expected, " "));
            if (!expected.empty()) expected_priorities.insert(std::to_string(priority));
            for (const auto& id : list)
                places[id].push_back(fmt::format("q{}:waiting:{}", q, priority));
        }
        if (std::set<std::string>(priorities.begin(), priorities.end()) != expected_priorities)
            return fmt::format("q{} priorities are [{}], expected [{}]", q,
                               fmt::join(priorities, " "), fmt::join(expected_priorities, " "));
        for (const char* name : {"scheduled", "running", "dead"}) {
            for (const auto& [id, score] : scored(replies[r++])) {
                places[id].push_back(fmt::format("q{}:{}", q, name));
                auto it = jobs_.find(id);
                if (it == jobs_.end() || it->second.queue != q)
                    return fmt::format("q{} {} holds {}, which the model does not know there", q,
                                       name, id);
                auto& job = it->second;
                if (std::string(name) == "scheduled") {
                    if (job.due && *job.due != score)
                        return fmt::format("{} is due at {}, expected {}", id, score, *job.due);
                    if (job.far && score < now + 1800000)
                        return fmt::format("{} is due at {}, too soon for a far delay", id, score);
                    if (!job.far && !job.due)
                        return fmt::format("{} is scheduled with no known due time", id);
                } else if (std::string(name) == "running") {
                    job.deadline = score;  // learned: only the server knows its clock
                } else {
                    job.died = score;
                }
            }
        }
        auto meta = replies[r++].as_array();
        auto counter = [](const redis::Reply& reply) {
            return reply.is_nil() ? std::string("0") : reply.as_string();
        };
        auto expected_succeeded = mq.succeeded_corrupt ? "x" : std::to_string(mq.succeeded);
        auto expected_failed = mq.failed_corrupt ? "x" : std::to_string(mq.failed);
        if (counter(meta[0]) != expected_succeeded || counter(meta[1]) != expected_failed)
            return fmt::format("q{} counters succeeded {} failed {}, expected {} {}", q,
                               counter(meta[0]), counter(meta[1]), expected_succeeded,
                               expected_failed);
        if ((meta[2].is_string() && meta[2].as_string() == "1") != mq.paused)
            return fmt::format("q{} paused flag differs from the model", q);
        for (const char* unique : unique_keys) {
            if (mq.unique_damaged.count(unique)) {
                auto type = replies[r++].as_string();
                if (type != "hash")
                    return fmt::format("q{} unique key {} is a {}, expected the damaged hash", q,
                                       unique, type);
                continue;
            }
            auto holder = replies[r++].as_optional_string();
            auto it = mq.unique.find(unique);
            auto expected =
                it == mq.unique.end() ? std::optional<std::string>() : std::optional(it->second);
            if (holder != expected)
                return fmt::format("q{} unique key {} names {}, expected {}", q, unique,
                                   holder.value_or("nothing"), expected.value_or("nothing"));
        }
    }

    std::map<std::string, long long> by_state;
    for (const auto& id : ids) {
        const auto& job = jobs_.at(id);
        const auto& reply = replies[r++];
        if (job.corrupt == "type") {
            // Not met by any script yet: still the string it was made.
            if (reply.as_string() != "string")
                return fmt::format("{} (damaged: not a hash) is a {}", id, reply.as_string());
        }
        static const std::vector<redis::Reply> none;
        const auto& f = job.corrupt == "type" ? none : reply.as_array();
        auto field = [&](std::size_t i) {
            return i >= f.size() || f[i].is_nil() ? std::string() : f[i].as_string();
        };
        std::string state = job.corrupt == "type"    ? job.state
                            : job.corrupt == "state" ? (field(0) == "bogus" ? job.state : field(0))
                                                     : field(0);
        ++by_state[state];
        if (state != job.state)
            return fmt::format("{} is {}, expected {}", id, state.empty() ? "missing" : state,
                               job.state);
        if (job.quarantined && field(6) != "corrupt")
            return fmt::format("{} was quarantined, but its reason is '{}'", id, field(6));
        // Exactly one state: a live or dead job in exactly the structure of its state, a
        // succeeded or cancelled one in none.
        const auto& where = places[id];
        std::string expected_place;
        if (state == "waiting")
            expected_place = fmt::format("q{}:waiting:{}", job.queue, job.priority);
        else if (state == "scheduled" || state == "running" || state == "dead")
            expected_place = fmt::format("q{}:{}", job.queue, state);
        if (expected_place.empty() ? !where.empty()
                                   : (where.size() != 1 || where[0] != expected_place))
            return fmt::format("{} ({}) is in [{}], expected [{}]", id, state,
                               fmt::join(where, " "), expected_place);
        // A damaged or quarantined record keeps what it had: its fields are not the model's.
        if (!job.corrupt.empty() || job.quarantined) continue;
        // A fresh record stores no attempts: absent means 0.
        const std::string attempts = field(1).empty() ? "0" : field(1);
        if (attempts != std::to_string(job.attempts))
            return fmt::format("{} has {} attempts, expected {}", id, field(1), job.attempts);
        if (field(2) != job.token)
            return fmt::format("{} has token '{}', expected '{}'", id, field(2), job.token);
        if (field(3) != job.settled)
            return fmt::format("{} was settled by '{}', expected '{}'", id, field(3), job.settled);
        if ((field(4) == "1") != job.cancel)
            return fmt::format("{} cancel flag '{}', expected {}", id, field(4), job.cancel);
        if (field(5) != job.worker)
            return fmt::format("{} worker '{}', expected '{}'", id, field(5), job.worker);
    }
    for (const auto& [id, where] : places)
        if (!jobs_.count(id))
            return fmt::format("{} is in [{}] but the model has no such job", id,
                               fmt::join(where, " "));
    for (const auto& id : recently_gone_)
        if (replies[r++].as_integer() != 0) return fmt::format("deleted {} still has keys", id);

    // The count of jobs adds up: everything ever created is in one state or was deleted.
    long long total = gone_count_;
    for (const auto& [state, count] : by_state)
        total += count;
    if (total != created_) return fmt::format("{} jobs accounted for, {} created", total, created_);
    return {};
}

class QueueModel : public RedisTest {};

TEST_F(QueueModel, RandomOperationsFromSeveralConnectionsMatchTheModel) {
    std::uint64_t seed = default_seed;
    int steps = default_steps;
    if (const char* text = std::getenv("WORKQ_MODEL_SEED")) seed = std::stoull(text);
    if (const char* text = std::getenv("WORKQ_MODEL_STEPS")) steps = std::stoi(text);
    SCOPED_TRACE(fmt::format("seed {} (replay with WORKQ_MODEL_SEED={})", seed, seed));

    ModelRun run(ns(), seed);
    std::deque<std::string> recent;  // the last operations, for the failure message
    std::map<std::string, int> op_counts;
    for (int number = 0; number < steps; ++number) {
        std::string error;
        auto what = run.step(number, error);
        op_counts[what.substr(0, what.find(' '))]++;
        recent.push_back(fmt::format("step {}: {}", number, what));
        if (recent.size() > 12) recent.pop_front();
        if (error.empty()) error = run.check();
        ASSERT_TRUE(error.empty())
            << "seed " << seed << ", step " << number << ": " << what << "\n  " << error
            << "\nlast operations:\n  " << fmt::format("{}", fmt::join(recent, "\n  "));
    }
    // Not vacuous: the run created jobs and went through every case the model knows.
    EXPECT_GT(run.created(), 300);
    for (const char* op :
         {"enqueue", "claim", "complete", "fail", "release", "renew", "reap", "cancel", "requeue",
          "delete", "pause", "resume", "purge", "damage", "mend"})
        EXPECT_GT(op_counts[op], 0) << op;
    const auto& events = run.events();
    for (const char* event :
         {"dead", "cancelled", "expired", "deleted", "requeued", "retry scheduled",
          "cancel flagged", "reaped lapsed", "lapsed holder settles", "lapsed holder renews",
          "complete held", "complete duplicate", "complete lost", "fail duplicate", "fail lost",
          "round settles", "release held", "release lost", "enqueue existing", "enqueue collision",
          // Damage (README, "Damaged data"): at every kind of key, met by the scripts.
          "quarantined", "queue damaged", "damaged queue refused", "damaged queue mended",
          "claim skips a damaged queue", "unique key damaged", "unique key replaced",
          "requeue keeps a corrupt letter", "complete corrupt", "record damaged: type",
          "record damaged: prio", "record damaged: attempts", "record damaged: max",
          "record damaged: state", "record damaged: payload", "record damaged: errors",
          "limits damaged", "damaged starts", "damaged ticks", "damaged watchers"}) {
        auto it = events.find(event);
        EXPECT_TRUE(it != events.end() && it->second > 0) << "never happened: " << event;
    }
    std::ostringstream summary;
    for (const auto& [event, count] : events)
        summary << event << "=" << count << "; ";
    RecordProperty("events", summary.str());
}

}  // namespace
}  // namespace workq::test
