// The embedded default: a private per-user redis-server on a Unix socket, started on first
// use when no server is configured anywhere.
//
// Its identity lives in the state directory ($XDG_STATE_HOME/workq, default
// ~/.local/state/workq): the lock that serialises starts, the pid file, the data
// (append-only file) and the file "socket" that records where the socket is. So cron (no
// XDG_RUNTIME_DIR), sudo and login shells all find the one server of a data directory.
// The socket itself lives in $XDG_RUNTIME_DIR/workq or else /tmp/workq-$UID, a directory that
// must be ours, not a link, and closed to others. That, and who answers on the socket, is
// checked on every connection (a reboot or a /tmp cleaner lets another user make the
// directory anew), not only when the server is started.
#pragma once

#include <filesystem>
#include <string>

#include "redis/transport.hpp"

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
// Throws RedisError when the server cannot be started (redis-server missing, server failing to
// come up: the message names its log), UntrustedServer when the socket directory is not ours
// alone or the server answering on the socket is not this state directory's (another user's,
// or another state directory's sharing the socket path: both directories are named; such a
// socket is never removed).
EmbeddedServer ensure_embedded_server();

// Before a connection to the embedded server: the socket's directory must be a directory (not a
// link) owned by us and closed to others. Returns false when it does not exist (no server
// there); throws UntrustedServer saying what is wrong with it.
bool check_embedded_socket_dir(const std::filesystem::path& socket_path);

// After connecting to the embedded server's socket: the process answering (SO_PEERCRED) must
// run as us and, when its working directory can be read (redis-server works in its data
// directory), be the server of `state_dir`. Throws UntrustedServer naming the server's user, or
// both state directories.
void check_embedded_peer(int fd, const std::filesystem::path& socket_path,
                         const std::filesystem::path& state_dir);

}  // namespace workq::redis
