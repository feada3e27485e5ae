#include "leases.hpp"

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <random>

#include "util/faults.hpp"
#include "util/log.hpp"

namespace workq::work {

Millis jittered(Millis base) {
    static std::mt19937_64 engine{std::random_device{}()};
    double factor = 0.75 + 0.5 * std::uniform_real_distribution<double>(0.0, 1.0)(engine);
    return Millis(static_cast<long long>(static_cast<double>(base.count()) * factor));
}

Leases::Leases(boost::asio::io_context& io, const std::vector<queue::QueueKeys>& queues,
               const std::vector<std::string>& names, Hooks hooks)
    : io_(io),
      queues_(queues),
      names_(names),
      hooks_(std::move(hooks)),
      renew_timer_(io),
      reaper_timer_(io) {}

void Leases::stop() {
    stopped_ = true;
    renew_timer_.cancel();
    reaper_timer_.cancel();
}

void Leases::schedule_renewal() {
    if (stopped_) return;
    // A third of the lease keeps it alive through two lost renewals; at most every 2 s so that
    // a user's cancel of a running job is noticed within seconds.
    renew_timer_.expires_after(std::min(hooks_.lease() / 3, renew_at_most_every));
    renew_timer_.async_wait([this](auto error) {
        if (error) return;
        renew();
        schedule_renewal();
    });
}

void Leases::renew() {
    auto connection = hooks_.connection();
    if (!connection || !connection->ready()) return;
    auto all = hooks_.held();
    for (std::size_t q = 0; q < queues_.size(); ++q) {
        auto held = std::make_shared<std::vector<Held>>();
        std::vector<queue::HeldJob> jobs;
        for (const auto& job : all)
            if (job.queue == q) held->push_back(job);
        if (held->empty()) continue;
        for (const auto& job : *held)
            jobs.push_back({job.id, job.token});
        auto call = queue::renew_call(queues_[q], hooks_.lease(), jobs);
        connection->script(*call.script, call.keys, call.args, [this, held](auto reply) {
            // A renewal that failed is not news: the next one (a third of the lease later)
            // tries again before the lease can lapse.
            if (!reply || reply->is_error()) return;
            auto statuses = queue::parse_renew(*reply);
            for (std::size_t i = 0; i < statuses.size() && i < held->size(); ++i)
                if (statuses[i] != queue::RenewStatus::renewed)
                    hooks_.news((*held)[i], statuses[i]);
        });
    }
}

void Leases::schedule_reaper() {
    if (stopped_) return;
    reaper_timer_.expires_after(jittered(reaper_interval));
    reaper_timer_.async_wait([this](auto error) {
        if (error) return;
        reap_all([this](long long taken_back) {
            log::debug(fmt::format("reaper pass: {} job(s) taken back", taken_back),
                       {{"worker", hooks_.label()}});
            hooks_.reaper_pass(taken_back);
            schedule_reaper();
        });
    });
}

struct Leases::ReapPass {
    std::size_t queues_left = 0;
    long long taken_back = 0;
    std::function<void(long long)> then;
};

void Leases::reap_all(std::function<void(long long taken_back)> then) {
    auto connection = hooks_.connection();
    if (!connection || !connection->ready() || queues_.empty()) {
        boost::asio::post(io_, [then = std::move(then)] { then(0); });
        return;
    }
    auto pass = std::make_shared<ReapPass>();
    pass->queues_left = queues_.size();
    pass->then = std::move(then);
    for (std::size_t q = 0; q < queues_.size(); ++q)
        reap_queue(q, pass, 0);
}

void Leases::reap_queue(std::size_t queue, std::shared_ptr<ReapPass> pass, long long so_far) {
    auto queue_done = [this, queue, pass](long long total) {
        if (total > 0)
            log::warn(fmt::format("took back {} job(s) whose lease lapsed", total),
                      {{"worker", hooks_.label()}, {"queue", names_[queue]}});
        pass->taken_back += total;
        if (--pass->queues_left == 0) pass->then(pass->taken_back);
    };
    auto connection = hooks_.connection();
    if (!connection || !connection->ready()) {
        queue_done(so_far);
        return;
    }
    auto call = queue::reap_call(queues_[queue], reap_limit, hooks_.result_ttl());
    connection->script(
        *call.script, call.keys, call.args,
        [this, call, queue, pass, so_far, queue_done](std::optional<redis::Reply> reply) {
            queue::ReapStep step;
            if (reply && reply->is_error()) {
                try {
                    queue::check_reply(call, *reply);
                } catch (const queue::QueueDamagedError& error) {
                    if (hooks_.damaged) hooks_.damaged(queue, error.damage);
                } catch (const std::exception& error) {
                    log::error(fmt::format("reaping failed: {}", error.what()),
                               {{"worker", hooks_.label()}});
                }
            } else if (reply) {
                try {
                    step = queue::parse_reap(*reply);
                } catch (const std::exception& error) {
                    log::error(fmt::format("reaping failed: {}", error.what()),
                               {{"worker", hooks_.label()}});
                }
                // The fault suite's crash right after a pass that took jobs back (a
                // pass that found none, as the one before the first claim often
                // does, proves nothing).
                if (step.taken_back > 0) crash_point("in-reaper");
            }
            // More lapsed leases than one call takes: the next batch at once, so
            // that they all come back within lease + 5 s however many there are.
            if (step.more && !stopped_)
                reap_queue(queue, pass, so_far + step.taken_back);
            else
                queue_done(so_far + step.taken_back);
        });
}

}  // namespace workq::work
