#include "schedule_firer.hpp"

#include <fmt/format.h>

#include "queue/scripts.hpp"
#include "queue/transitions.hpp"
#include "util/cron.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"
#include "util/time.hpp"

namespace workq::work {
namespace {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr std::size_t due_limit = 100;   // due schedules read per round and queue
constexpr std::size_t step_limit = 100;  // steps per schedule and round: the rest next round
// Between rounds that found due ticks they could not act on (a corrupt schedule stays due): a
// bound on how often such a queue is read, instead of a loop.
constexpr Millis stuck_retry{1000};
// A timer set a little after the tick: the server's clock decides, and a round that arrives a
// hair early finds nothing due.
constexpr Millis after_tick{5};

}  // namespace

ScheduleFirer::ScheduleFirer(boost::asio::io_context& io, queue::NamespaceKeys namespace_keys,
                             std::vector<queue::QueueKeys> queues, std::string worker_id,
                             ConnectionGetter connection, std::function<std::string()> label)
    : io_(io),
      namespace_keys_(std::move(namespace_keys)),
      queues_(std::move(queues)),
      worker_id_(std::move(worker_id)),
      connection_(std::move(connection)),
      label_(std::move(label)),
      state_(queues_.size()),
      timer_(io) {}

bool ScheduleFirer::active() const {
    auto connection = connection_();
    return started_ && !stopped_ && connection && connection->ready();
}

void ScheduleFirer::start() {
    if (stopped_) return;
    started_ = true;
    rounds(false);
}

void ScheduleFirer::on_claim_hint(std::optional<Millis> until_tick) {
    if (!until_tick || !active()) return;
    auto at = Clock::now() + *until_tick + after_tick;
    if (until_tick->count() == 0) {
        rounds(false);
        return;
    }
    // The hint covers all our queues: which one has the tick, the round finds out.
    hinted_ = true;
    // A tick nearer than the one the timer waits for: a schedule was added or changed.
    if (!armed_for_ || at + Millis(50) < *armed_for_) {
        armed_for_ = at;
        timer_.expires_at(at);
        timer_.async_wait([this](auto error) {
            if (!error) on_timer();
        });
    }
}

void ScheduleFirer::on_reaper_pass() {
    if (active()) rounds(true);
}

void ScheduleFirer::on_connection_lost() {
    timer_.cancel();
    armed_for_.reset();
    for (auto& queue : state_) {
        queue.round_in_flight = false;
        queue.round_again = false;
        // Ticks that fall while cut off are not this worker's to vouch for.
        queue.watch_start.reset();
    }
}

void ScheduleFirer::stop() {
    if (stopped_) return;
    stopped_ = true;
    timer_.cancel();
    auto connection = connection_();
    if (!started_ || !connection || !connection->ready()) return;
    // Ticks from now on fell while this worker did not watch: the next one to start applies
    // --catch-up to them, unless another worker watches. Best effort: a worker that dies
    // without this stops vouching when its deadline passes.
    for (const auto& keys : queues_) {
        auto call = queue::schedule_due_call(keys, worker_id_, Millis(0), 0);
        connection->script(*call.script, call.keys, call.args, [](auto) {});
    }
}

void ScheduleFirer::rounds(bool only_with_schedules) {
    for (std::size_t q = 0; q < queues_.size(); ++q)
        if (!only_with_schedules || state_[q].has_schedules) round(q);
}

void ScheduleFirer::on_timer() {
    armed_for_.reset();
    bool all = hinted_;
    hinted_ = false;
    if (active()) rounds(!all);
}

void ScheduleFirer::round(std::size_t queue_index) {
    if (!active()) return;
    auto& queue = state_[queue_index];
    if (queue.round_in_flight) {
        queue.round_again = true;
        return;
    }
    queue.round_in_flight = true;
    auto call =
        queue::schedule_due_call(queues_[queue_index], worker_id_, queue::watch_period, due_limit);
    connection_()->script(
        *call.script, call.keys, call.args,
        [this, queue_index, call](std::optional<redis::Reply> reply) {
            if (!reply) return;  // the connection failed: start() runs again on reconnect
            queue::DueRead read;
            try {
                queue::check_reply(call, *reply);
                read = queue::parse_schedule_due(*reply);
            } catch (const std::exception& error) {
                auto& state = state_[queue_index];
                state.round_in_flight = false;
                // Each round meets it again (a damaged queue stays so until mended): said once.
                if (state.round_error != error.what())
                    log::error(fmt::format("cannot read the schedules: {}", error.what()),
                               {{"worker", label_()}, {"queue", queues_[queue_index].queue()}});
                state.round_error = error.what();
                return;
            }
            if (!state_[queue_index].round_error.empty()) {
                state_[queue_index].round_error.clear();
                log::info("the schedules can be read again",
                          {{"worker", label_()}, {"queue", queues_[queue_index].queue()}});
            }
            on_due(queue_index, read);
        });
}

void ScheduleFirer::on_due(std::size_t queue_index, const queue::DueRead& read) {
    auto& queue = state_[queue_index];
    queue.has_schedules = read.earliest_tick_ms.has_value();
    // The first round after start or a reconnect: from now on this worker fires every tick.
    if (!queue.watch_start) queue.watch_start = read.server_now_ms;
    const auto& queue_name = queues_[queue_index].queue();
    auto received = Clock::now();

    struct Pending {
        std::size_t left = 0;
        std::optional<long long> earliest;
        bool progressed = false;
    };
    auto pending = std::make_shared<Pending>();
    pending->earliest = read.earliest_tick_ms;
    auto finish = [this, queue_index, pending, read, received] {
        auto& state = state_[queue_index];
        state.round_in_flight = false;
        if (state.round_again) {
            state.round_again = false;
            round(queue_index);
            return;
        }
        if (!pending->earliest) return;
        auto now = read.server_now_ms +
                   std::chrono::duration_cast<Millis>(Clock::now() - received).count();
        auto earliest = *pending->earliest;
        // Still due: more steps than one round takes (at once), or ticks nobody can act on.
        if (earliest <= now && !pending->progressed) earliest = now + stuck_retry.count();
        arm(earliest, now);
    };

    std::vector<std::pair<queue::DueSchedule, queue::FirePlan>> work;
    for (const auto& schedule : read.due) {
        CronExpression expression;
        TimeZone zone;
        try {
            expression = parse_cron(schedule.cron);
            zone = TimeZone::named(schedule.tz);
        } catch (const UsageError& error) {
            // Stored by hand or by another version: workq-schedule add checks both. Said once
            // per definition; the schedule stays due until someone fixes it.
            if (queue.reported.insert(schedule.name + "." + schedule.generation).second)
                log::error(fmt::format("schedule {} cannot fire: {}", schedule.name, error.what()),
                           {{"worker", label_()}, {"queue", queue_name}});
            continue;
        }
        auto plan = queue::plan_fire(expression, zone, schedule.catch_up, schedule.next_ms,
                                     read.server_now_ms, read.watched_until_ms, *queue.watch_start,
                                     step_limit);
        if (plan.steps.empty()) continue;
        if (plan.missed > 0 && plan.first_missed_ms && plan.last_missed_ms)
            log::info(fmt::format(
                          "schedule {}: {} tick(s) from {} to {} fell while no worker "
                          "served the queue; --catch-up {}: {}",
                          schedule.name, plan.missed, format_rfc3339(*plan.first_missed_ms),
                          format_rfc3339(*plan.last_missed_ms), queue::to_string(schedule.catch_up),
                          schedule.catch_up == queue::CatchUp::latest ? "one job, for the latest"
                                                                      : "no job for them"),
                      {{"worker", label_()}, {"queue", queue_name}});
        work.emplace_back(schedule, std::move(plan));
    }
    if (work.empty()) {
        finish();
        return;
    }
    pending->left = work.size();
    for (const auto& [schedule, plan] : work)
        fire(
            queue_index, schedule, plan,
            [pending](const queue::FireResult& result) {
                // Each reply names the queue's earliest tick after its step: the last one wins.
                pending->earliest = result.earliest_tick_ms;
                if (result.status == queue::FireStatus::done) pending->progressed = true;
            },
            [pending, finish] {
                if (--pending->left == 0) finish();
            });
}

void ScheduleFirer::fire(std::size_t queue_index, const queue::DueSchedule& schedule,
                         const queue::FirePlan& plan,
                         std::function<void(const queue::FireResult&)> on_result,
                         std::function<void()> done) {
    // A tick's job id is unique in the namespace, as for workq-enqueue --id (README, "Ids
    // across queues"): reserve the ids for this queue, look for them in the other queues, and
    // make each job fenced by its reservation. A tick whose id another queue holds or has made
    // makes no job here (after an `add` that moved the schedule was cut short, both queues
    // fire it: the id keeps it to one job).
    auto ids = std::make_shared<std::vector<std::string>>();
    for (const auto& step : plan.steps)
        if (step.tick_ms) ids->push_back(queue::tick_job_id(schedule.name, *step.tick_ms));
    auto placements = std::make_shared<std::map<std::string, Placement>>();
    if (ids->empty()) {
        send_steps(queue_index, schedule, plan, *placements, on_result, done);
        return;
    }
    auto connection = connection_();
    if (!connection || !connection->ready()) return done();  // the reconnect starts a round
    const auto& queue_name = queues_[queue_index].queue();
    auto call = queue::reserve_id_call(namespace_keys_, *ids, queue_name);
    connection->script(
        *call.script, call.keys, call.args,
        [this, queue_index, schedule, plan, on_result, done, ids, placements,
         call](std::optional<redis::Reply> reply) {
            if (!reply) return done();  // the connection failed: the next round tries again
            std::vector<queue::IdReservation> reservations;
            try {
                queue::check_reply(call, *reply);
                reservations = queue::parse_reserve_id(*reply);
            } catch (const std::exception& error) {
                log::error(fmt::format("schedule {}: cannot reserve its jobs' ids: {}",
                                       schedule.name, error.what()),
                           {{"worker", label_()}, {"queue", queues_[queue_index].queue()}});
                return done();
            }
            for (std::size_t i = 0; i < ids->size() && i < reservations.size(); ++i) {
                auto& place = (*placements)[(*ids)[i]];
                if (reservations[i].held)
                    place.fence_ms = reservations[i].deadline_ms;
                else
                    place.elsewhere = reservations[i].holder;
            }
            look_elsewhere(queue_index, schedule, plan, ids, placements, on_result, done);
        });
}

void ScheduleFirer::look_elsewhere(std::size_t queue_index, const queue::DueSchedule& schedule,
                                   const queue::FirePlan& plan,
                                   std::shared_ptr<std::vector<std::string>> ids,
                                   std::shared_ptr<std::map<std::string, Placement>> placements,
                                   std::function<void(const queue::FireResult&)> on_result,
                                   std::function<void()> done) {
    auto connection = connection_();
    if (!connection || !connection->ready()) return done();
    connection->command(
        {"SMEMBERS", namespace_keys_.queues()},
        // The lookups go out on the connection that answered (weakly held: a handler must not
        // keep its own connection alive).
        [this, weak = std::weak_ptr(connection), queue_index, schedule, plan, ids, placements,
         on_result, done](std::optional<redis::Reply> reply) {
            auto answered = weak.lock();
            if (!reply || !answered) return done();
            std::vector<std::string> others;
            if (reply->is_array())
                for (const auto& item : reply->elements)
                    if (item.is_string() && item.text != queues_[queue_index].queue())
                        others.push_back(item.text);
            std::vector<std::string> held;
            for (const auto& id : *ids)
                if ((*placements)[id].fence_ms) held.push_back(id);
            if (others.empty() || held.empty()) {
                send_steps(queue_index, schedule, plan, *placements, on_result, done);
                return;
            }
            // A job made under a reservation that has lapsed since is in its queue already.
            auto left = std::make_shared<std::size_t>(held.size() * others.size());
            auto found = std::make_shared<std::vector<std::string>>();
            for (const auto& id : held)
                for (const auto& other : others) {
                    auto key = queue::QueueKeys(namespace_keys_.name(), other).job(id);
                    answered->command({"EXISTS", key}, [this, weak, queue_index, schedule, plan,
                                                        placements, on_result, done, left, found,
                                                        id,
                                                        other](std::optional<redis::Reply> exists) {
                        if (exists && exists->type == redis::Reply::Type::integer &&
                            exists->integer == 1) {
                            (*placements)[id].fence_ms.reset();
                            (*placements)[id].elsewhere = other;
                            found->push_back(id);
                        }
                        if (--*left > 0) return;
                        auto still = weak.lock();
                        if (!found->empty() && still) {
                            // Give back what this queue will not use (left alone, it lapses).
                            auto release = queue::release_id_call(namespace_keys_, *found,
                                                                  queues_[queue_index].queue());
                            still->script(*release.script, release.keys, release.args, [](auto) {});
                        }
                        send_steps(queue_index, schedule, plan, *placements, on_result, done);
                    });
                }
        });
}

void ScheduleFirer::send_steps(std::size_t queue_index, const queue::DueSchedule& schedule,
                               const queue::FirePlan& plan,
                               const std::map<std::string, Placement>& placements,
                               std::function<void(const queue::FireResult&)> on_result,
                               std::function<void()> done) {
    // The steps go out pipelined: each expects the next tick the previous one set, so if one is
    // refused (another worker was first, the schedule changed, a reservation lapsed) the rest
    // are refused too, and the next round starts from what the server has.
    auto connection = connection_();
    if (!connection || !connection->ready()) return done();
    auto left = std::make_shared<std::size_t>(plan.steps.size());
    auto expected = schedule.next_ms;
    const auto& keys = queues_[queue_index];
    for (auto step : plan.steps) {
        std::optional<long long> fence;
        if (step.tick_ms) {
            auto id = queue::tick_job_id(schedule.name, *step.tick_ms);
            auto place = placements.find(id);
            if (place != placements.end() && place->second.fence_ms) {
                fence = place->second.fence_ms;
            } else {
                log::info(
                    fmt::format("schedule {}: tick {}: no job here, job {} is {} queue {}",
                                schedule.name, format_rfc3339(*step.tick_ms), id,
                                place != placements.end() ? "made or being made in" : "reserved by",
                                place != placements.end() ? place->second.elsewhere : "?"),
                    {{"worker", label_()}, {"queue", keys.queue()}});
                step.tick_ms.reset();  // the schedule advances past it
            }
        }
        auto call = queue::schedule_fire_call(keys, schedule, expected, step, fence);
        expected = step.new_next_ms;
        connection->script(
            *call.script, call.keys, call.args,
            [this, queue_index, call, name = schedule.name, generation = schedule.generation,
             tick = step.tick_ms, left, on_result, done](std::optional<redis::Reply> reply) {
                if (reply) {
                    try {
                        queue::check_reply(call, *reply);
                        auto result = queue::parse_schedule_fire(*reply);
                        on_result(result);
                        const auto& queue_name = queues_[queue_index].queue();
                        if (result.status == queue::FireStatus::done && tick) {
                            if (result.how == "created")
                                log::info(fmt::format("schedule {}: tick {}: made job {}", name,
                                                      format_rfc3339(*tick), result.job_id),
                                          {{"worker", label_()}, {"queue", queue_name}});
                            else if (result.how == "unique")
                                log::info(fmt::format("schedule {}: tick {}: no job, job {} holds "
                                                      "its --unique key",
                                                      name, format_rfc3339(*tick), result.job_id),
                                          {{"worker", label_()}, {"queue", queue_name}});
                        }
                    } catch (const queue::QueueDamagedError& error) {
                        // Fields workq never writes (README, "Damaged data"): nothing was
                        // changed, the tick stays due and late. Said once per definition, as
                        // for an expression that cannot be read.
                        if (state_[queue_index].reported.insert(name + "." + generation).second)
                            log::error(
                                fmt::format("schedule {} cannot fire: {}", name, error.what()),
                                {{"worker", label_()}, {"queue", queues_[queue_index].queue()}});
                    } catch (const std::exception& error) {
                        log::error(fmt::format("schedule {} cannot fire: {}", name, error.what()),
                                   {{"worker", label_()}, {"queue", queues_[queue_index].queue()}});
                    }
                }
                if (--*left == 0) done();
            });
    }
}

void ScheduleFirer::arm(long long earliest_ms, long long now_ms) {
    if (!active()) return;
    auto at = Clock::now() + Millis(std::max(0LL, earliest_ms - now_ms)) + after_tick;
    if (armed_for_ && *armed_for_ <= at) return;  // an earlier wake-up is set already
    armed_for_ = at;
    timer_.expires_at(at);
    timer_.async_wait([this](auto error) {
        if (!error) on_timer();
    });
}

}  // namespace workq::work
