// Crash points for the fault-injection tests: in a build with WORKQ_FAULTS, crash_point("x")
// kills the process with SIGKILL when WORKQ_CRASH_AT=x, to reach windows that a signal from
// outside hits only by luck. In other builds it compiles to nothing.
#pragma once

#include <string_view>

namespace workq {

#ifdef WORKQ_FAULTS
void crash_point(std::string_view name);
#else
inline void crash_point(std::string_view) {}
#endif

}  // namespace workq
