#include "redis/embedded.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "redis/connection.hpp"
#include "util/errors.hpp"
#include "util/fd.hpp"

namespace workq::redis {
namespace fs = std::filesystem;
namespace {

// How long a start may take before we give up: loading a large append-only file is the slow part.
constexpr auto start_deadline = std::chrono::seconds(30);

std::string env_or_empty(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

fs::path home_dir() {
    if (auto home = env_or_empty("HOME"); !home.empty()) return home;
    if (const passwd* entry = getpwuid(getuid()); entry && entry->pw_dir) return entry->pw_dir;
    throw RedisError(
        "cannot find your home directory for the embedded server: set HOME or XDG_STATE_HOME");
}

void make_private_dir(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw RedisError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
    ::chmod(dir.c_str(), 0700);
}

// Why a socket directory is not ours alone, or "" when it is. Another local user must not be
// able to make /tmp/workq-$UID first (or again, after a reboot) and so see or replace our socket.
std::string socket_dir_problem(const struct stat& info) {
    if (S_ISLNK(info.st_mode)) return "it is a symbolic link";
    if (!S_ISDIR(info.st_mode)) return "it is not a directory";
    if (info.st_uid != ::getuid())
        return fmt::format("it is owned by uid {}, not by you (uid {})", info.st_uid, ::getuid());
    if ((info.st_mode & 077) != 0)
        return fmt::format("it is open to others (mode {:o})", info.st_mode & 0777);
    return {};
}

[[noreturn]] void refuse_socket_dir(const fs::path& dir, std::string_view why) {
    throw UntrustedServer(
        fmt::format("refusing the socket directory {}: {}; remove it or set XDG_RUNTIME_DIR to a "
                    "private directory",
                    dir.string(), why));
}

// Makes the socket directory (0700) if it is missing, and checks it.
void check_socket_dir(const fs::path& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw RedisError(fmt::format("cannot create the socket directory {}: {}", dir.string(),
                                     std::strerror(errno)));
    struct stat info {};
    if (::lstat(dir.c_str(), &info) != 0)
        throw RedisError(fmt::format("cannot inspect the socket directory {}: {}", dir.string(),
                                     std::strerror(errno)));
    if (auto why = socket_dir_problem(info); !why.empty()) refuse_socket_dir(dir, why);
}

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Whether `pid`'s working directory is `dir` (redis-server works in its data directory, which
// for ours is the state directory). nullopt when it cannot be read.
std::optional<bool> works_in(pid_t pid, const fs::path& dir) {
    struct stat served {
    }, wanted{};
    if (::stat(fmt::format("/proc/{}/cwd", pid).c_str(), &served) != 0 ||
        ::stat(dir.c_str(), &wanted) != 0)
        return std::nullopt;
    return same_file(served, wanted);
}

fs::path socket_dir() {
    if (auto runtime = env_or_empty("XDG_RUNTIME_DIR");
        !runtime.empty() && fs::is_directory(runtime))
        return fs::path(runtime) / "workq";
    return fs::path(fmt::format("/tmp/workq-{}", ::getuid()));
}

std::string read_first_line(const fs::path& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

void write_file_atomically(const fs::path& file, const std::string& text) {
    auto temporary = file;
    temporary += ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << text;
        if (!out) throw RedisError(fmt::format("cannot write {}", temporary.string()));
    }
    fs::rename(temporary, file);
}

// A quick "is anyone answering": connect to the socket and PING. LOADING counts as alive. A
// server that is not ours (UntrustedServer) is not "absent": that propagates.
enum class Probe { answering, loading, absent };
Probe probe(const fs::path& socket, const fs::path& state_dir) {
    if (socket.empty() || socket.string().size() >= sizeof(sockaddr_un{}.sun_path))
        return Probe::absent;
    std::error_code ec;
    if (!fs::exists(socket, ec)) return Probe::absent;
    Endpoint endpoint;
    endpoint.kind = Endpoint::Kind::unix_socket;
    endpoint.socket_path = socket.string();
    endpoint.embedded_state = state_dir.string();
    try {
        auto connection = Connection::open(
            endpoint, {std::chrono::milliseconds(1000), std::chrono::milliseconds(2000)});
        auto reply = connection.command({"PING"});
        if (reply.is_error() && reply.text.starts_with("LOADING")) return Probe::loading;
        return reply.is_error() ? Probe::absent : Probe::answering;
    } catch (const UntrustedServer&) {
        throw;
    } catch (const RedisError&) {
        return Probe::absent;
    }
}

pid_t read_pid(const fs::path& pid_file) {
    auto text = read_first_line(pid_file);
    char* end = nullptr;
    long pid = std::strtol(text.c_str(), &end, 10);
    return (pid > 1 && end && *end == '\0') ? static_cast<pid_t>(pid) : 0;
}

// The effective uid a process runs as (the "Uid:" line of its status), or nullopt.
std::optional<uid_t> process_uid(pid_t pid) {
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(status, line);) {
        if (!line.starts_with("Uid:")) continue;
        std::istringstream fields(line.substr(4));
        unsigned long real = 0, effective = 0;
        if (fields >> real >> effective) return static_cast<uid_t>(effective);
    }
    return std::nullopt;
}

// Whether `pid` is this state directory's server: a process of ours, executing redis-server (the
// binary we would start, or one named redis-server: an upgrade replaces the file), working in
// the state directory. A stale pid file may name any process by now, even one whose command
// line says "redis-server": the name alone proves nothing.
bool is_our_server(pid_t pid, const fs::path& state_dir, const std::string& executable) {
    if (process_uid(pid) != ::getuid()) return false;
    auto exe = fmt::format("/proc/{}/exe", pid);
    struct stat running {
    }, expected{};
    if (::stat(exe.c_str(), &running) != 0) return false;
    bool same_binary = ::stat(executable.c_str(), &expected) == 0 && same_file(running, expected);
    std::error_code ec;
    auto target = fs::read_symlink(exe, ec);
    if (!same_binary && (ec || !target.filename().string().starts_with("redis-server")))
        return false;
    return works_in(pid, state_dir) == true;
}

// A server whose socket vanished (a cleaner emptied /tmp) still owns the data directory; stop it
// before starting another, as two servers on one append-only file would corrupt it.
void stop_stale_server(const fs::path& state_dir, const std::string& executable) {
    pid_t pid = read_pid(state_dir / "redis.pid");
    if (pid == 0 || !is_our_server(pid, state_dir, executable)) return;
    ::kill(pid, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (::kill(pid, 0) == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
}

constexpr const char* install_hint =
    "install it (apt-get install redis-server) or point workq at a server with --redis URL or "
    "WORKQ_REDIS_URL";

std::string find_redis_server() {
    if (auto explicit_path = env_or_empty("WORKQ_REDIS_SERVER"); !explicit_path.empty()) {
        // Checked here, not left to exec: a typo must fail now, not after the start deadline.
        if (::access(explicit_path.c_str(), X_OK) != 0)
            throw RedisError(fmt::format(
                "no Redis server is configured and WORKQ_REDIS_SERVER={} cannot be run ({}) for "
                "the embedded default: {}",
                explicit_path, std::strerror(errno), install_hint));
        return explicit_path;
    }
    auto path = env_or_empty("PATH");
    if (path.empty()) path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        auto candidate = fs::path(dir.empty() ? "." : dir) / "redis-server";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    for (const char* fallback :
         {"/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"})
        if (::access(fallback, X_OK) == 0) return fallback;
    throw RedisError(fmt::format(
        "no Redis server is configured and redis-server is not installed for the embedded "
        "default: {}",
        install_hint));
}

std::string quote(const fs::path& path) {
    std::string out = "\"";
    for (char c : path.string()) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

void write_config(const fs::path& config, const fs::path& state, const fs::path& socket) {
    std::string text = fmt::format(
        "# Written by workq for its embedded default server; rewritten at every start.\n"
        "port 0\n"
        "unixsocket {}\n"
        "unixsocketperm 700\n"
        "dir {}\n"
        "pidfile {}\n"
        "appendonly yes\n"
        "appendfsync everysec\n"
        "save \"\"\n"
        "maxmemory-policy noeviction\n"
        "daemonize no\n"
        "logfile \"\"\n",
        quote(socket), quote(state), quote(state / "redis.pid"));
    write_file_atomically(config, text);
}

// Starts redis-server fully detached: its own session, stdio to its log, no inherited fds,
// and not our child (double fork), so `id=$(workq-enqueue q x)` returns at once. Returns the
// server's pid. A failed exec is reported here (through a close-on-exec pipe), not discovered
// at the start deadline.
pid_t spawn_detached(const std::string& server, const fs::path& config, const fs::path& log) {
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0)
        throw RedisError(fmt::format("cannot start redis-server: pipe: {}", std::strerror(errno)));
    UniqueFd report_read(report[0]);
    UniqueFd report_write(report[1]);
    pid_t child = ::fork();
    if (child < 0)
        throw RedisError(fmt::format("cannot start redis-server: fork: {}", std::strerror(errno)));
    if (child == 0) {
        ::setsid();
        pid_t server_pid = ::fork();
        if (server_pid != 0) {
            // Tell the parent the server's pid (or the fork's error): then it can see the server
            // die early.
            int32_t message[2] = {static_cast<int32_t>(server_pid), server_pid < 0 ? errno : 0};
            (void)!::write(report[1], message, sizeof message);
            ::_exit(0);
        }
        auto fail = [&](int error) {
            int32_t message[2] = {-1, error};
            (void)!::write(report[1], message, sizeof message);
            ::_exit(127);
        };
        int null_fd = ::open("/dev/null", O_RDONLY);
        if (null_fd < 0) fail(errno);
        int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log_fd < 0) fail(errno);
        ::dup2(null_fd, 0);
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
        // Keep only the report pipe (as fd 3, closed by a successful exec).
        if (report[1] != 3) {
            if (::dup2(report[1], 3) < 0) fail(errno);
            report[1] = 3;
            ::fcntl(3, F_SETFD, FD_CLOEXEC);
        }
        close_fds_from(4);
        reset_signals_for_exec();
        if (::chdir("/") != 0) fail(errno);
        ::execl(server.c_str(), server.c_str(), config.c_str(), static_cast<char*>(nullptr));
        fail(errno);
    }
    report_write.reset();
    int status = 0;
    ::waitpid(child, &status, 0);
    // The intermediate child's message first; then the server's, if its exec failed; else EOF.
    pid_t server_pid = -1;
    for (;;) {
        int32_t message[2] = {0, 0};
        ssize_t got = ::read(report_read.get(), message, sizeof message);
        if (got < 0 && errno == EINTR) continue;
        if (got != static_cast<ssize_t>(sizeof message)) break;
        if (message[0] > 0) {
            server_pid = message[0];
            continue;
        }
        throw RedisError(fmt::format("cannot start the embedded redis-server ({}): {}; {}", server,
                                     std::strerror(message[1]), install_hint));
    }
    if (server_pid <= 0) throw RedisError("cannot start the embedded redis-server: fork failed");
    return server_pid;
}

// Whether a process still runs (a zombie does not: the server exited).
bool is_running(pid_t pid) {
    if (::kill(pid, 0) != 0) return errno == EPERM;
    std::ifstream stat(fmt::format("/proc/{}/stat", pid));
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    return close == std::string::npos || close + 2 >= text.size() || text[close + 2] != 'Z';
}

std::string tail_of(const fs::path& log, std::size_t lines) {
    std::ifstream in(log);
    std::vector<std::string> all;
    for (std::string line; std::getline(in, line);)
        all.push_back(line);
    std::string out;
    for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
        out += "\n  " + all[i];
    return out.empty() ? " nothing" : out;
}

class FileLock {
  public:
    explicit FileLock(const fs::path& file)
        : fd_(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
        if (fd_.get() < 0 || ::flock(fd_.get(), LOCK_EX) != 0)
            throw RedisError(
                fmt::format("cannot lock {}: {}", file.string(), std::strerror(errno)));
    }

  private:
    UniqueFd fd_;  // closing it releases the lock
};

}  // namespace

fs::path embedded_state_dir() {
    if (auto state = env_or_empty("XDG_STATE_HOME"); !state.empty())
        return fs::path(state) / "workq";
    return home_dir() / ".local" / "state" / "workq";
}

EmbeddedServer ensure_embedded_server() {
    EmbeddedServer server;
    server.state_dir = embedded_state_dir();
    auto socket_record = server.state_dir / "socket";

    // Fast path: the recorded socket answers, in a directory of ours, with our server. One
    // connect, no lock.
    server.socket_path = read_first_line(socket_record);
    if (probe(server.socket_path, server.state_dir) != Probe::absent) return server;

    make_private_dir(server.state_dir);
    FileLock lock(server.state_dir / "lock");
    // Someone may have started it while we waited for the lock.
    server.socket_path = read_first_line(socket_record);
    if (probe(server.socket_path, server.state_dir) != Probe::absent) return server;

    auto dir = socket_dir();
    check_socket_dir(dir);
    auto socket = dir / "redis.sock";
    if (socket.string().size() >= sizeof(sockaddr_un{}.sun_path))
        throw RedisError(
            fmt::format("the socket path {} is too long for a Unix socket; set XDG_RUNTIME_DIR to "
                        "a shorter directory",
                        socket.string()));
    // Two state directories may share this socket path (a systemd --user unit and a login shell
    // with different XDG_STATE_HOME): their starts are serialised here, and a socket a live
    // server answers on is never removed. Ours (the record was lost) is used; another state
    // directory's makes probe() throw, naming both.
    FileLock socket_lock(dir / "lock");
    if (probe(socket, server.state_dir) != Probe::absent) {
        write_file_atomically(socket_record, socket.string() + "\n");
        server.socket_path = socket;
        return server;
    }
    auto executable = find_redis_server();
    stop_stale_server(server.state_dir, executable);
    auto config = server.state_dir / "redis.conf";
    auto log = server.state_dir / "redis.log";
    write_config(config, server.state_dir, socket);
    std::error_code ignored;
    fs::remove(socket, ignored);
    pid_t pid = spawn_detached(executable, config, log);

    auto deadline = std::chrono::steady_clock::now() + start_deadline;
    while (probe(socket, server.state_dir) != Probe::answering) {
        if (!is_running(pid))
            throw RedisError(
                fmt::format("the embedded redis-server ({}) exited at start; its log {} says:{}",
                            executable, log.string(), tail_of(log, 5)));
        if (std::chrono::steady_clock::now() > deadline)
            throw RedisError(fmt::format(
                "the embedded redis-server did not start within {}s; its log {} says:{}",
                start_deadline.count(), log.string(), tail_of(log, 5)));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    write_file_atomically(socket_record, socket.string() + "\n");
    server.socket_path = socket;
    server.started_now = true;
    return server;
}

bool check_embedded_socket_dir(const fs::path& socket_path) {
    auto dir = socket_path.parent_path();
    struct stat info {};
    if (::lstat(dir.c_str(), &info) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return false;
        throw UntrustedServer(fmt::format("cannot inspect the socket directory {}: {}",
                                          dir.string(), std::strerror(errno)));
    }
    if (auto why = socket_dir_problem(info); !why.empty()) refuse_socket_dir(dir, why);
    return true;
}

void check_embedded_peer(int fd, const fs::path& socket_path, const fs::path& state_dir) {
    ucred peer{};
    socklen_t length = sizeof peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0)
        throw UntrustedServer(fmt::format("cannot tell who answers on {}: {}", socket_path.string(),
                                          std::strerror(errno)));
    if (peer.uid != ::getuid())
        throw UntrustedServer(fmt::format(
            "refusing the server on {}: it runs as uid {}, not as you (uid {}); remove {} or set "
            "XDG_RUNTIME_DIR to a private directory",
            socket_path.string(), peer.uid, ::getuid(), socket_path.parent_path().string()));
    // A server in another pid namespace shows no pid: its uid is all we can know. The same goes
    // for a working directory we cannot read: a process of ours could do anything to us anyway;
    // this check is about two state directories sharing one socket path, not about trust.
    if (peer.pid <= 0 || works_in(peer.pid, state_dir) != false) return;
    std::error_code ec;
    auto where = fs::read_symlink(fmt::format("/proc/{}/cwd", peer.pid), ec);
    throw UntrustedServer(fmt::format(
        "the socket {} is served by the embedded server of another state directory, {} (pid {}), "
        "not by this one's, {}: two state directories share one socket path; give each its own "
        "XDG_RUNTIME_DIR, or use one XDG_STATE_HOME for both",
        socket_path.string(), ec ? std::string("unknown") : where.string(), peer.pid,
        state_dir.string()));
}

}  // namespace workq::redis
