// Where RESP values end in a byte stream: enough of the Redis protocol for the fault proxy to
// count a server's replies (to lose exactly N of them, pipelined ones included) and to tell
// which command each reply answers. Nothing is decoded beyond that.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace workq::fault {

enum class Scan { complete, incomplete, malformed };

struct ScannedValue {
    Scan status = Scan::incomplete;
    std::size_t length = 0;  // bytes of the first value, when complete
};

// The first RESP value (RESP2, and the RESP3 types) at the start of `bytes`.
ScannedValue scan_value(std::string_view bytes);

struct ScannedCommand {
    Scan status = Scan::incomplete;
    std::size_t length = 0;
    std::string words;  // the command's arguments joined by spaces, each cut to 64 bytes
};

// The first command a client sent at the start of `bytes`: a RESP array of bulk strings, or an
// inline command (one line).
ScannedCommand scan_command(std::string_view bytes);

}  // namespace workq::fault
