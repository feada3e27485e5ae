#include "util/faults.hpp"

#ifdef WORKQ_FAULTS
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

namespace workq {

void crash_point(std::string_view name) {
    const char* wanted = std::getenv("WORKQ_CRASH_AT");
    if (wanted && name == wanted) ::kill(::getpid(), SIGKILL);
}

}  // namespace workq
#endif
