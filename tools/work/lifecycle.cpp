#include "lifecycle.hpp"

namespace workq::work {

State next(State state, Event event) {
    using enum State;
    // Terminal: a stopped worker hears nothing more, and an error is kept to the exit (its
    // exit code is 4 however the drain that follows ends).
    if (state == stopped || state == error) return state;
    if (event == Event::fatal) return error;
    switch (state) {
        case initializing:
            if (event == Event::connected) return starting;
            if (event == Event::drain) return draining;
            return state;
        case starting:
            if (event == Event::started) return running;
            if (event == Event::start_failed) return error;
            if (event == Event::drain) return draining;
            return state;
        case running:
            if (event == Event::pause) return paused;
            if (event == Event::drain) return draining;
            return state;
        case paused:
            if (event == Event::resume) return running;
            if (event == Event::drain) return draining;
            return state;
        case draining:
            if (event == Event::drained) return stopped;
            return state;
        case stopped:
        case error:
            return state;
    }
    return state;
}

std::string_view to_string(State state) {
    switch (state) {
        case State::initializing:
            return "initializing";
        case State::starting:
            return "starting";
        case State::running:
            return "running";
        case State::paused:
            return "paused";
        case State::draining:
            return "draining";
        case State::stopped:
            return "stopped";
        case State::error:
            return "error";
    }
    return "?";
}

std::string_view to_string(Event event) {
    switch (event) {
        case Event::connected:
            return "connected";
        case Event::started:
            return "started";
        case Event::start_failed:
            return "start_failed";
        case Event::pause:
            return "pause";
        case Event::resume:
            return "resume";
        case Event::drain:
            return "drain";
        case Event::fatal:
            return "fatal";
        case Event::drained:
            return "drained";
    }
    return "?";
}

}  // namespace workq::work
