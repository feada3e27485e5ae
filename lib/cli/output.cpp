#include "cli/output.hpp"

#include <fmt/format.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "util/errors.hpp"

namespace workq::cli {

void ignore_sigpipe() {
    std::signal(SIGPIPE, SIG_IGN);
}

void write_stdout(std::string_view bytes) {
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
}

void flush_stdout() {
    if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return;
    int error = errno;
    if (error == EPIPE) {
        std::signal(SIGPIPE, SIG_DFL);
        std::raise(SIGPIPE);
    }
    throw Error(fmt::format("cannot write to stdout: {}", std::strerror(error)));
}

}  // namespace workq::cli
