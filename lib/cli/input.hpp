// Ids given on the command line, or read from stdin with '-' (CONTRACT.md section 6).
#pragma once

#include <string>
#include <vector>

namespace workq::cli {

// `ids` as given; when it is exactly {"-"}, the lines of stdin instead (one id per line, a
// trailing '\r' dropped, empty lines skipped).
std::vector<std::string> ids_or_stdin(std::vector<std::string> ids);

}  // namespace workq::cli
