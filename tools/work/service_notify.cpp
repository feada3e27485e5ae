#include "service_notify.hpp"

#include <fmt/format.h>
#include <cstdlib>

#include "util/sd_notify.hpp"

namespace workq::work {

ServiceNotifier::ServiceNotifier(boost::asio::io_context& io)
    : enabled_(std::getenv("NOTIFY_SOCKET") != nullptr), watchdog_timer_(io) {}

void ServiceNotifier::state_changed(std::string_view state, std::string_view why) {
    if (!enabled_) return;
    std::string message;
    if (state == "running" && !ready_sent_) {
        ready_sent_ = true;
        message = "READY=1\n";
        schedule_watchdog();
    }
    bool stopping = state == "draining" || state == "stopped" || state == "error";
    if (stopping && !stopping_sent_ && (state != "error" || ready_sent_)) {
        stopping_sent_ = true;
        message += "STOPPING=1\n";
    }
    message += "STATUS=" +
               sd_status_line(why.empty() ? std::string(state) : fmt::format("{}: {}", state, why));
    sd_notify(message);
    // A stopped worker's loop is about to end: a pending timer must not keep it turning.
    if (state == "stopped") watchdog_timer_.cancel();
}

void ServiceNotifier::schedule_watchdog() {
    auto interval = sd_watchdog_interval();
    if (!interval) return;
    sd_notify("WATCHDOG=1");
    watchdog_timer_.expires_after(*interval);
    watchdog_timer_.async_wait([this](auto error) {
        if (!error) schedule_watchdog();
    });
}

}  // namespace workq::work
