// Reads payloads from a file descriptor (stdin) with the contract's framing:
//   lines (default): '\n' ends a payload and is not part of it; empty payloads are skipped; a
//   last line without '\n' is a payload. NUL-separated (-0): the same with '\0'.
//   whole: all bytes, exactly, are one payload (even when empty).
// Memory stays bounded by the payload limit: a payload that grows past it is reported, not read.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace workq::enqueue {

enum class Framing { lines, nul, whole };

class PayloadReader {
  public:
    PayloadReader(int fd, Framing framing, std::size_t max_payload);

    enum class Status { payload, end, too_large };
    // Next payload into `out`. too_large: the payload at input_number() exceeds the limit
    // (reading stops there). Throws Error when the descriptor cannot be read.
    Status next(std::string& out);

    // 1-based number of the last payload's line (or NUL-record) in the input.
    std::size_t input_number() const { return record_; }

    // Called when the next read would block (nothing is waiting on the descriptor), before
    // blocking: a slow producer (`tail -f log | workq-enqueue q`) must not leave jobs that were
    // already read sitting in a buffer until more input comes.
    void on_idle(std::function<void()> hook) { idle_hook_ = std::move(hook); }

  private:
    bool fill();

    int fd_;
    Framing framing_;
    std::size_t max_payload_;
    std::vector<char> buffer_;
    std::size_t begin_ = 0, end_ = 0;
    bool eof_ = false;
    bool whole_done_ = false;
    std::size_t record_ = 0;
    std::function<void()> idle_hook_;
};

}  // namespace workq::enqueue
