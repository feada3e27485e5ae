// The embedded default: a private per-user redis-server on a Unix socket, started on first
// use when no server is configured anywhere.
//
// Its identity lives in the state directory ($XDG_STATE_HOME/workq, default
// ~/.local/state/workq): the lock that serialises starts, the pid file, the data
// (append-only file) and the file "socket" that records where the socket is. So cron (no
// XDG_RUNTIME_DIR), sudo and login shells all find the one server of a data directory.
// The socket itself lives in $XDG_RUNTIME_DIR/workq or else /tmp/workq-$UID, a directory that
// must be ours, not a link, and closed to others.
#pragma once

#include <filesystem>
#include <string>

namespace workq::redis {

struct EmbeddedServer {
    std::filesystem::path state_dir;
    std::filesystem::path socket_path;
    bool started_now = false;  // true when this call started the server
};

// The state directory that would be used, without creating anything.
std::filesystem::path embedded_state_dir();

// Finds the running private server or starts it, waiting until it answers. Safe to call from
// several processes at once: one of them starts the server, the others wait for it and use it.
// Throws RedisError when the server cannot be started (redis-server missing, unsafe socket
// directory, server failing to come up: the message names its log).
EmbeddedServer ensure_embedded_server();

}  // namespace workq::redis
