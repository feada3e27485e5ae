// The worker's lifecycle as a pure table of state x event (s6's supervisor): the contract's
// states (CONTRACT.md section 4: initializing, starting, running, paused, draining, stopped,
// error) and the events that move between them. The worker feeds every event through next();
// what each state *does* (claim or not, run hooks, exit) stays with the worker.
//
//   initializing --connected--> starting --started--> running <--pause/resume--> paused
//        |                         |                     |                          |
//        +--------- drain ---------+------- drain -------+---------- drain ---------+--> draining
//   any state but stopped --fatal--> error          starting --start_failed--> error
//   draining --drained--> stopped                   (error stays error until the exit)
#pragma once

#include <array>
#include <string_view>

namespace workq::work {

enum class State { initializing, starting, running, paused, draining, stopped, error };

enum class Event {
    connected,     // the command connection is up for the first time: --on-start runs next
    started,       // --on-start and the first health check passed: jobs may be claimed
    start_failed,  // --on-start failed: nothing is ever claimed, exit 4
    pause,         // a reason to claim nothing appeared (SIGTSTP, the breaker, --health-cmd)
    resume,        // no reason to pause remains
    drain,         // claim nothing more, let running jobs finish (SIGTERM, --max-jobs, ...)
    fatal,         // COMMAND cannot run, or the data is a newer workq's: exit 4
    drained,       // nothing runs and nothing waits to be reported: the worker exits
};

inline constexpr std::array all_states{State::initializing, State::starting, State::running,
                                       State::paused,       State::draining, State::stopped,
                                       State::error};
inline constexpr std::array all_events{Event::connected, Event::started, Event::start_failed,
                                       Event::pause,     Event::resume,  Event::drain,
                                       Event::fatal,     Event::drained};

// The state after `event` in `state`. An event that means nothing in a state leaves it as it
// is (a SIGTSTP while draining, a second SIGTERM): the caller compares to see a change.
State next(State state, Event event);

std::string_view to_string(State state);
std::string_view to_string(Event event);

}  // namespace workq::work
