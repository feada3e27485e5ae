// systemd's readiness protocol (sd_notify(3)) without libsystemd: a service started with
// Type=notify finds a Unix datagram socket's path in NOTIFY_SOCKET and sends it lines such as
// "READY=1", "STATUS=running", "STOPPING=1" and "WATCHDOG=1". A path starting with '@' names a
// socket in the abstract namespace. Outside systemd (no NOTIFY_SOCKET) everything here is a
// no-op, so callers need not ask.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/duration.hpp"

namespace workq {

// Sends one message (newline-separated VAR=VALUE assignments) to $NOTIFY_SOCKET. Returns false
// when the variable is unset or the send failed; a failure is never fatal for the service,
// which is why this reports instead of throwing.
bool sd_notify(std::string_view message);

// The interval at which to send "WATCHDOG=1": half of $WATCHDOG_USEC, when that is set and
// $WATCHDOG_PID is unset or names this process; nullopt otherwise.
std::optional<Millis> sd_watchdog_interval();

// STATUS= text must be one line: newlines become spaces.
std::string sd_status_line(std::string_view text);

}  // namespace workq
