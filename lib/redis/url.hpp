// Where the server is and how to log in: parsed from the contract's URL forms
//   redis://[user[:password]@]host[:port][/db]
//   rediss://[user[:password]@]host[:port][/db]     (TLS, CONTRACT.md section 10)
//   unix:///path/to.sock[?db=N]
//   redis+sentinel://[user[:password]@]host[:port][,host[:port]...]/MASTER[/db]
//   redis://[user[:password]@]host[:port],host[:port][,...]   (Cluster seeds, also rediss://)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace workq::redis {

// One sentinel's address.
struct HostPort {
    std::string host;
    int port = 26379;
    bool operator==(const HostPort&) const = default;
};

// redis+sentinel://: the sentinels to ask, in the URL's order, and the name of the master they
// watch. The sentinels get no user name and no password but `password` (CONTRACT.md section 10:
// the URL's password is the master's).
struct SentinelSettings {
    std::vector<HostPort> sentinels;
    std::string master_name;
    std::string password;  // WORKQ_SENTINEL_PASSWORD or redis.sentinel_password_file; empty: none
};

// A Redis Cluster (CONTRACT.md section 10): the nodes to read the slot map from, in the URL's
// order. Set by parse_url for several hosts, and by Connection::open for one host whose server
// says cluster_enabled:1.
struct ClusterSettings {
    std::vector<HostPort> seeds;
};

// TLS for a rediss:// endpoint: the flags, environment and config keys of CONTRACT.md section 10.
// The server's certificate chain and name are always verified.
struct TlsSettings {
    bool enabled = false;     // rediss://
    std::string ca_cert;      // PEM file (or c_rehash'd directory) of CAs; empty: the system's
    std::string cert;         // client certificate (PEM, chain allowed), for mutual TLS
    std::string key;          // its private key (PEM, not encrypted)
    std::string server_name;  // the name to verify and send as SNI; empty: the URL's host
};

struct Endpoint {
    enum class Kind { tcp, unix_socket };
    Kind kind = Kind::tcp;
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string socket_path;
    int database = 0;
    std::string username;  // empty: the default user
    std::string password;  // empty: no AUTH
    // Set for redis+sentinel://. The sentinels say where the master is: `host` is empty until
    // they have (redis/sentinel.hpp fills it and `port` in the copy it connects with).
    std::optional<SentinelSettings> sentinel;
    // Set for a Redis Cluster; `host` and `port` are then its first seed's.
    std::optional<ClusterSettings> cluster;
    TlsSettings tls;  // tls.enabled only for rediss://
    // Set for the embedded default server (redis/embedded.hpp) to its state directory: every
    // connection then checks the socket's directory and who answers on the socket first.
    std::string embedded_state;
};

// Parses a URL (rediss:// sets tls.enabled; the other TLS settings come from flags, environment
// and config). Throws UsageError naming the URL (password masked) and what is wrong.
Endpoint parse_url(std::string_view url);

// True when the URL text carries a password (so a caller can warn that argv is visible).
bool url_has_password(std::string_view url);

// "redis://host:6379/0", "rediss://host:6379/0" or "unix:///run/x.sock?db=1", never with the
// password. A Sentinel endpoint reads "redis+sentinel://h1:26379,h2:26379/mymaster/0" (or
// rediss+sentinel://), or once its master was found "master mymaster at redis://10.0.0.5:6379/0"
// (or rediss://). A cluster given several seeds reads "redis://h1:7000,h2:7001/0". The URL forms
// parse back to the same server.
std::string describe(const Endpoint& endpoint);

// "host:port", "[::1]:port": an address as a URL writes it.
std::string host_port(std::string_view host, int port);

// The URL with any password replaced by "***", for messages.
std::string mask_password(std::string_view url);

// Overwrites every byte of the URL's passwords with '*', in place and keeping the length: for
// a URL in argv, which other users read in /proc/<pid>/cmdline.
void blank_password(char* url, std::size_t length);

}  // namespace workq::redis
