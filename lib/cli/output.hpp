// stdout of the tools: their data, and what happens when nobody reads.
#pragma once

#include <string_view>

namespace workq::cli {

// The tool ignores SIGPIPE so that a Redis server that goes away mid-write is an error the tool
// reports (exit 3, with its counts), not a silent death. Call once, first.
void ignore_sigpipe();

// Writes bytes to stdout (buffered).
void write_stdout(std::string_view bytes);

// Flushes stdout. When the reader of stdout is gone (EPIPE), ends the process by SIGPIPE, as
// any filter in a pipeline does: every id already printed was enqueued. Throws Error for any
// other write failure (a full disk).
void flush_stdout();

}  // namespace workq::cli
