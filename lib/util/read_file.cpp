#include "util/read_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "util/fd.hpp"

namespace workq {

BoundedRead read_bounded(const std::string& file, std::size_t limit) {
    BoundedRead result;
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        result.error = errno;
        return result;
    }
    char buffer[16384];
    for (;;) {
        // One byte past the limit is enough to know it is too large.
        auto want = std::min(sizeof buffer, limit + 1 - result.text.size());
        ssize_t got = ::read(fd.get(), buffer, want);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            result.error = errno;
            result.text.clear();
            return result;
        }
        if (got == 0) break;
        result.text.append(buffer, static_cast<std::size_t>(got));
        if (result.text.size() > limit) {
            result.status = BoundedRead::Status::too_large;
            result.text.clear();
            return result;
        }
    }
    result.status = BoundedRead::Status::ok;
    return result;
}

}  // namespace workq
