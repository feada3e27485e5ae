// What a handler writes, bounded: the stderr relay (each line to the worker's stderr, tagged)
// with the last bytes kept as the error text, and the result kept up to --max-result. Shared by
// the per-job handler (handler_run) and the persistent one (persistent_handler), so that both
// follow the same rules:
//   - a stderr line is relayed when its newline arrives; a line longer than
//     longest_relayed_line is relayed in pieces of exactly that many bytes (a handler that
//     never writes a newline cannot grow the worker's memory); what is left at EOF is relayed;
//   - the error text is the last error_tail_bytes of stderr (CONTRACT.md section 4: 4 KiB);
//   - the result keeps the first max bytes and counts the rest as dropped.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace workq::work {

inline constexpr std::size_t error_tail_bytes = 4096;      // the contract's "last 4 KiB"
inline constexpr std::size_t longest_relayed_line = 4096;  // longer lines go in pieces

// The last `limit` bytes of a stream. Amortized: trimmed once it holds twice the limit.
class Tail {
  public:
    explicit Tail(std::size_t limit = error_tail_bytes) : limit_(limit) {}
    void append(std::string_view chunk);
    // The last `limit` bytes appended (fewer if fewer came).
    std::string text() const;
    bool empty() const { return bytes_.empty(); }
    void clear() { bytes_.clear(); }

  private:
    std::size_t limit_;
    std::string bytes_;
};

// Splits stderr into lines and relays each (by default through log::relay). The tag is given
// with each chunk: a persistent handler's lines name the job it runs, or its slot between jobs.
class StderrRelay {
  public:
    using Sink = std::function<void(std::string_view tag, std::string_view line)>;
    StderrRelay();  // relays through log::relay
    explicit StderrRelay(Sink sink) : sink_(std::move(sink)) {}
    void feed(std::string_view chunk, std::string_view tag);
    // EOF: relays a last line that had no newline.
    void flush(std::string_view tag);
    // A new process: a partial line of the old one is not continued by the new one.
    void reset() { partial_.clear(); }

  private:
    Sink sink_;
    std::string partial_;
};

// The first `limit` bytes of a stream, and how many beyond them were dropped.
struct BoundedText {
    std::size_t limit = 1 << 20;
    std::string text;
    std::size_t dropped = 0;
    void append(std::string_view chunk);
};

// Cuts `text` to `limit` bytes; returns how many were cut.
std::size_t cut_to(std::string& text, std::size_t limit);

}  // namespace workq::work
