// The worker's side of systemd's readiness protocol (see util/sd_notify.hpp): READY=1 once it
// first runs, STOPPING=1 when it drains, a STATUS= line at every change of state, and
// WATCHDOG=1 every WATCHDOG_USEC/2 from a timer on the worker's own event loop, so the pings stop
// when the loop stops turning. Without NOTIFY_SOCKET it sends nothing and starts no timer.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string_view>

namespace workq::work {

class ServiceNotifier {
  public:
    explicit ServiceNotifier(boost::asio::io_context& io);

    // Called on every change of the worker's state (by its contract name: "running",
    // "draining", ...) with the reason, if any.
    void state_changed(std::string_view state, std::string_view why);

  private:
    void schedule_watchdog();

    bool enabled_;
    bool ready_sent_ = false, stopping_sent_ = false;
    boost::asio::steady_timer watchdog_timer_;
};

}  // namespace workq::work
