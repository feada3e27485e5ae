// Reading a whole small file (a config file, a password file) with a ceiling on its size: a
// file that never ends (/dev/zero, a FIFO fed forever) or a huge one must be an error that
// names it, not a tool that reads until memory runs out.
#pragma once

#include <cstddef>
#include <string>

namespace workq {

struct BoundedRead {
    enum class Status { ok, too_large, failed };
    Status status = Status::failed;
    std::string text;  // ok: the whole file
    int error = 0;     // failed: errno of the open or read
};

// Reads `file` (a regular file, a pipe, a device) to its end, up to `limit` bytes: one byte
// more is `too_large`, and no more is read. Never throws for the file's sake.
BoundedRead read_bounded(const std::string& file, std::size_t limit);

}  // namespace workq
