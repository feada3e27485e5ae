// workq-work's settings: what the command line and the config file's [work] table say, parsed
// into checked values. Parsing is a pure function of (argv, config file), so that SIGHUP can
// run it again and take over the settings that may change while running.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/config.hpp"
#include "cli/options.hpp"
#include "http/address.hpp"
#include "queue/backoff.hpp"

namespace workq::work {

using Millis = std::chrono::milliseconds;

// What SIGHUP (or SIGUSR1) may change while the worker runs: a reload parses the settings
// again and assigns this part whole (CONTRACT.md section 4: concurrency, timeouts, backoff,
// lease and hooks; queues and COMMAND never).
struct Reloadable {
    long long concurrency = 1;
    // --claim-ahead: jobs held leased beyond the busy slots (0: off; at most the concurrency).
    long long claim_ahead = 0;
    Millis timeout{300'000};  // 0: none
    Millis kill_grace{3'000};
    Millis lease{30'000};
    queue::Backoff backoff;
    std::set<int> permanent_exit_codes{100};
    Millis shutdown_timeout{25'000};
    std::string on_start, on_stop, health_cmd;
    Millis health_interval{30'000};
    // The breaker (CONTRACT.md section 12): after this many failed jobs in a row, claim nothing
    // for the cooldown (doubling on each trip before a success, at most max_failure_cooldown).
    long long pause_after_failures = 0;  // 0: off
    Millis failure_cooldown{30'000};
    std::size_t max_result = 1024 * 1024;
    Millis result_ttl{86'400'000};
    cli::Config config;  // the file they came from
};

struct Settings : Reloadable {
    // Fixed for the worker's life.
    std::vector<std::string> queues;
    std::vector<std::string> command;  // COMMAND and its arguments
    bool payload_as_argument = false;  // --arg
    bool burst = false;
    long long max_jobs = 0;  // 0: no limit
    Millis max_runtime{0};   // 0: no limit
    std::string name;        // --name, empty: a fresh id
    bool persistent = false;
    long long recycle_jobs = 0, recycle_errors = 0;
    Millis recycle_age{0};
    Millis summary_interval{60'000};  // 0: no periodic summary (the final one is always logged)
    std::optional<http::ListenAddress> http;  // --http: /livez, /readyz, /metrics, /

    // Where they came from.
    cli::CommonOptions common;
    // Keys the config file cannot change, by key: what set them ("--concurrency" on the
    // command line, or "WORKQ_WORK_CONCURRENCY").
    std::map<std::string, std::string> pinned;
};

// The settings SIGHUP may change, as (key, value as the user writes it) pairs in a fixed order:
// what a reload compares and logs.
std::vector<std::pair<std::string, std::string>> reloadable_values(const Settings& settings);

// Parses argv (and the config file it names or implies). Throws UsageError (exit 2) naming
// what is wrong; --help and --version throw cli::HelpRequested.
Settings parse_settings(int argc, char** argv);

// Settings that are valid but defeat their purpose (a --shutdown-timeout that leaves running
// jobs no time), as warnings for the log at start and on every reload.
std::vector<std::string> settings_warnings(const Settings& settings);

// Checks that `concurrency` slots fit in the limit on open descriptors, after raising the soft
// limit to the hard one (handlers get the soft limit the worker started with: see
// set_child_descriptor_limit). A slot's handler holds up to three pipes' ends; the worker's own
// (Redis, signals, the guard, hooks, a handler being started) are a fixed allowance. Throws
// UsageError naming the limit and the largest -c it allows: at start, not mid-run.
void check_descriptor_budget(long long concurrency);

// The footer of --help: lifecycle, signals, environment, exit status, examples.
extern const char* const help_footer;

}  // namespace workq::work
