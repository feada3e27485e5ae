// Where the server is and how to log in: parsed from the contract's URL forms
//   redis://[user[:password]@]host[:port][/db]
//   unix:///path/to.sock[?db=N]
#pragma once

#include <string>
#include <string_view>

namespace workq::redis {

struct Endpoint {
    enum class Kind { tcp, unix_socket };
    Kind kind = Kind::tcp;
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string socket_path;
    int database = 0;
    std::string username;  // empty: the default user
    std::string password;  // empty: no AUTH
};

// Parses a URL. Throws UsageError naming the URL (password masked) and what is wrong; for
// rediss:// the message points to the README's TLS section.
Endpoint parse_url(std::string_view url);

// True when the URL text carries a password (so a caller can warn that argv is visible).
bool url_has_password(std::string_view url);

// "redis://host:6379/0" or "unix:///run/x.sock?db=1", never with the password.
std::string describe(const Endpoint& endpoint);

// The URL with any password replaced by "***", for messages.
std::string mask_password(std::string_view url);

// Overwrites every byte of the URL's passwords with '*', in place and keeping the length: for
// a URL in argv, which other users read in /proc/<pid>/cmdline.
void blank_password(char* url, std::size_t length);

}  // namespace workq::redis
