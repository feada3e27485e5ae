#include "redis/tls.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <tuple>

#include "util/names.hpp"

namespace workq::redis {
namespace {

struct ContextFree {
    void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
};
using ContextPtr = std::shared_ptr<SSL_CTX>;

struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
};

// The reason of OpenSSL's oldest queued error ("certificate verify failed"), and the queue
// emptied, so that it does not leak into the next connection's message.
std::string openssl_reason(const char* fallback = "TLS error") {
    std::string reason;
    while (auto code = ERR_get_error()) {
        if (!reason.empty()) continue;  // the first is the cause; the rest are its echoes
        const char* text = ERR_reason_error_string(code);
        reason = text ? text : fmt::format("OpenSSL error {:#x}", code);
    }
    return reason.empty() ? fallback : reason;
}

// A file a setting names must be there and readable: say which, before OpenSSL says less.
void check_readable(const std::string& file, const char* what, bool directory_allowed) {
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0)
        throw UsageError(
            fmt::format("cannot read the {} {}: {}", what, file, std::strerror(errno)));
    if (S_ISDIR(info.st_mode) && !directory_allowed)
        throw UsageError(fmt::format("cannot read the {} {}: it is a directory", what, file));
    if (::access(file.c_str(), R_OK) != 0)
        throw UsageError(
            fmt::format("cannot read the {} {}: {}", what, file, std::strerror(errno)));
}

// Whether `directory` holds OpenSSL's hash links (c_rehash, update-ca-certificates): a name
// such as 9d04f354.0.
bool has_hash_links(const char* directory) {
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator(directory ? directory : "", error)) {
        auto name = entry.path().filename().string();
        if (name.size() == 10 && name[8] == '.' && name[9] == '0' &&
            std::all_of(name.begin(), name.begin() + 8,
                        [](unsigned char c) { return std::isxdigit(c) != 0; }))
            return true;
    }
    return false;
}

ContextPtr build_context(const TlsSettings& settings) {
    ERR_clear_error();
    ContextPtr context(SSL_CTX_new(TLS_client_method()), ContextFree());
    if (!context) throw RedisError("cannot set up TLS: " + openssl_reason());
    SSL_CTX_set_min_proto_version(context.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
    // Writes are retried with the output buffer as it then is: moved (a std::string that grew)
    // and possibly longer.
    SSL_CTX_set_mode(context.get(),
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // An encrypted key would prompt on the terminal of a worker started by systemd: refuse it.
    SSL_CTX_set_default_passwd_cb(context.get(), [](char*, int, int, void*) { return 0; });

    if (settings.ca_cert.empty()) {
        // The system's hashed directory is read lazily, one file per issuer the server's chain
        // names; the bundle file is parsed whole (~140 certificates, tens of milliseconds a
        // one-shot tool would pay on every run). The bundle only where the directory has no
        // hash links, or when SSL_CERT_FILE names a bundle of the user's.
        const char* file_env = std::getenv(X509_get_default_cert_file_env());
        const char* dir_env = std::getenv(X509_get_default_cert_dir_env());
        const char* directory = dir_env && *dir_env ? dir_env : X509_get_default_cert_dir();
        if (!(file_env && *file_env) && has_hash_links(directory)) {
            if (SSL_CTX_set_default_verify_dir(context.get()) != 1)
                throw UsageError("cannot use the system's CA certificates: " + openssl_reason() +
                                 " (give them with --tls-ca-cert)");
        } else if (SSL_CTX_set_default_verify_paths(context.get()) != 1)
            throw UsageError("cannot load the system's CA certificates: " + openssl_reason() +
                             " (give them with --tls-ca-cert)");
    } else {
        check_readable(settings.ca_cert, "CA certificates", true);
        struct stat info {};
        bool directory = ::stat(settings.ca_cert.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
        int loaded =
            directory
                ? SSL_CTX_load_verify_locations(context.get(), nullptr, settings.ca_cert.c_str())
                : SSL_CTX_load_verify_locations(context.get(), settings.ca_cert.c_str(), nullptr);
        if (loaded != 1)
            throw UsageError(fmt::format("cannot load the CA certificates in {}: {} (PEM expected)",
                                         settings.ca_cert, openssl_reason()));
    }

    if (settings.cert.empty() != settings.key.empty())
        throw UsageError(
            "a client certificate needs both --tls-cert and --tls-key (one was given without the "
            "other)");
    if (!settings.cert.empty()) {
        check_readable(settings.cert, "client certificate", false);
        check_readable(settings.key, "client key", false);
        if (SSL_CTX_use_certificate_chain_file(context.get(), settings.cert.c_str()) != 1)
            throw UsageError(fmt::format("cannot load the client certificate {}: {} (PEM expected)",
                                         settings.cert, openssl_reason()));
        if (SSL_CTX_use_PrivateKey_file(context.get(), settings.key.c_str(), SSL_FILETYPE_PEM) !=
            1) {
            auto reason = openssl_reason();
            if (reason == "key values mismatch")
                throw UsageError(
                    fmt::format("the client key {} does not belong to the certificate {}",
                                settings.key, settings.cert));
            throw UsageError(
                fmt::format("cannot load the client key {}: {} (an unencrypted PEM key expected)",
                            settings.key, reason));
        }
        if (SSL_CTX_check_private_key(context.get()) != 1)
            throw UsageError(fmt::format("the client key {} does not belong to the certificate {}",
                                         settings.key, settings.cert));
    }
    return context;
}

// One context per distinct settings, for the life of the process: loading the system's CA
// store costs milliseconds, and a worker reconnects many times.
ContextPtr client_context(const TlsSettings& settings) {
    static std::mutex mutex;
    static std::map<std::tuple<std::string, std::string, std::string>, ContextPtr> contexts;
    std::lock_guard lock(mutex);
    auto key = std::make_tuple(settings.ca_cert, settings.cert, settings.key);
    auto found = contexts.find(key);
    if (found != contexts.end()) return found->second;
    auto context = build_context(settings);
    contexts.emplace(key, context);
    return context;
}

// SSL_set_tlsext_host_name() without its macro's C cast.
bool set_sni(SSL* ssl, const std::string& name) {
    return SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                    const_cast<char*>(name.c_str())) == 1;
}

bool is_ip_literal(const std::string& name) {
    unsigned char buffer[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, name.c_str(), buffer) == 1 ||
           ::inet_pton(AF_INET6, name.c_str(), buffer) == 1;
}

class TlsTransport final : public Transport {
  public:
    TlsTransport(UniqueFd socket, ContextPtr context, std::string name)
        : Transport(std::move(socket)), context_(std::move(context)), name_(std::move(name)) {
        ERR_clear_error();
        ssl_.reset(SSL_new(context_.get()));
        if (!ssl_ || SSL_set_fd(ssl_.get(), fd()) != 1)
            throw TransportError("cannot set up TLS: " + openssl_reason());
        // The name to verify: an IP literal against the certificate's IP addresses, a host name
        // against its DNS names (and sent as SNI, which takes no addresses).
        auto* param = SSL_get0_param(ssl_.get());
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        bool set = is_ip_literal(name_)
                       ? X509_VERIFY_PARAM_set1_ip_asc(param, name_.c_str()) == 1
                       : X509_VERIFY_PARAM_set1_host(param, name_.c_str(), 0) == 1 &&
                             set_sni(ssl_.get(), name_);
        if (!set)
            throw TransportError(
                fmt::format("cannot verify the name '{}': {}", printable(name_), openssl_reason()));
        // Called when the server asks for a client certificate, whether we have one or not.
        SSL_set_cert_cb(
            ssl_.get(),
            [](SSL*, void* self) {
                static_cast<TlsTransport*>(self)->certificate_requested_ = true;
                return 1;
            },
            this);
        SSL_set_connect_state(ssl_.get());
    }

    Wait handshake() override {
        if (handshaken_) return Wait::none;
        ERR_clear_error();
        int result = SSL_connect(ssl_.get());
        if (result == 1) {
            handshaken_ = true;
            return Wait::none;
        }
        return retry_or_throw(result);
    }

    IoResult read(char* buffer, std::size_t size) override {
        ERR_clear_error();
        std::size_t done = 0;
        int result = SSL_read_ex(ssl_.get(), buffer, size, &done);
        if (result == 1) {
            received_ = true;
            return {done, Wait::none};
        }
        return {0, retry_or_throw(result)};
    }

    IoResult write(const char* data, std::size_t size) override {
        ERR_clear_error();
        std::size_t done = 0;
        int result = SSL_write_ex(ssl_.get(), data, size, &done);
        if (result == 1) return {done, Wait::none};
        return {0, retry_or_throw(result)};
    }

    void shutdown() override {
        // close_notify, once, without waiting for the server's: the socket closes next.
        if (handshaken_ && !failed_) {
            ERR_clear_error();
            (void)SSL_shutdown(ssl_.get());
            ERR_clear_error();
        }
    }

    std::string security() const override {
        return fmt::format("{} ({}), server verified as {}", SSL_get_version(ssl_.get()),
                           SSL_get_cipher_name(ssl_.get()), name_);
    }

  private:
    Wait retry_or_throw(int result) {
        int error = errno;
        auto kind = SSL_get_error(ssl_.get(), result);
        if (kind == SSL_ERROR_WANT_READ) return Wait::readable;
        if (kind == SSL_ERROR_WANT_WRITE) return Wait::writable;
        failed_ = true;
        auto reason = openssl_reason("");
        if (!reason.empty() && reason != "unexpected eof while reading")
            throw TransportError(explain(reason));
        // The connection ended without a TLS alert we could read: a close, or a reset.
        std::string ended = kind == SSL_ERROR_SYSCALL && error != 0 && error != EPIPE
                                ? std::string(std::strerror(error))
                                : "closed by the server";
        if (!handshaken_)
            throw TransportError(fmt::format(
                "{} during the TLS handshake (does that port speak TLS? a plain one needs a "
                "redis:// URL)",
                ended));
        // TLS 1.3 ends the client's handshake before the server has looked at the client's
        // certificate: a server that refuses it (or its absence) closes the connection then,
        // often with a reset that loses its alert. Say so when it had asked for one.
        if (!received_ && certificate_requested_)
            throw TransportError(
                SSL_get_certificate(ssl_.get()) == nullptr
                    ? fmt::format("the server requires a client certificate ({} after asking for "
                                  "one; give it with --tls-cert and --tls-key)",
                                  ended)
                    : fmt::format("the server refused the client certificate ({} after the "
                                  "handshake)",
                                  ended));
        throw TransportError(ended);
    }

    // OpenSSL's words, with what they mean for the user and what to do.
    std::string explain(const std::string& reason) const {
        auto verify = SSL_get_verify_result(ssl_.get());
        if (!handshaken_ && verify != X509_V_OK) {
            std::string detail = X509_verify_cert_error_string(verify);
            switch (verify) {
                case X509_V_ERR_HOSTNAME_MISMATCH:
                case X509_V_ERR_IP_ADDRESS_MISMATCH:
                    return fmt::format(
                        "the server's certificate is not for '{}' ({}; give the name it has with "
                        "--tls-server-name)",
                        printable(name_), detail);
                case X509_V_ERR_CERT_HAS_EXPIRED:
                    return fmt::format("the server's certificate has expired ({})", detail);
                case X509_V_ERR_CERT_NOT_YET_VALID:
                    return fmt::format("the server's certificate is not valid yet ({})", detail);
                case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
                case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
                case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
                case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
                case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
                    return fmt::format(
                        "the server's certificate is not signed by a trusted CA ({}; give the CA "
                        "with --tls-ca-cert)",
                        detail);
                default:
                    return fmt::format("the server's certificate does not verify ({})", detail);
            }
        }
        if (reason == "wrong version number" || reason == "packet length too long" ||
            reason == "record layer failure")
            return fmt::format(
                "the server does not speak TLS ({}; a plain port needs a redis:// URL)", reason);
        if (reason.find("certificate required") != std::string::npos)
            return fmt::format(
                "the server requires a client certificate ({}; give one with --tls-cert and "
                "--tls-key)",
                reason);
        if (reason.find("alert bad certificate") != std::string::npos ||
            reason.find("alert unknown ca") != std::string::npos ||
            reason.find("alert certificate") != std::string::npos)
            return fmt::format("the server refused the client certificate ({})", reason);
        return reason;
    }

    ContextPtr context_;
    std::string name_;
    std::unique_ptr<SSL, SslFree> ssl_;
    bool handshaken_ = false;
    bool failed_ = false;                 // no close_notify after a fatal error
    bool received_ = false;               // the server sent data after the handshake
    bool certificate_requested_ = false;  // the server asked for a client certificate
};

}  // namespace

void check_tls_settings(const TlsSettings& settings) {
    (void)client_context(settings);
}

std::unique_ptr<Transport> make_tls_transport(UniqueFd socket, const Endpoint& endpoint) {
    auto name = endpoint.tls.server_name.empty() ? endpoint.host : endpoint.tls.server_name;
    return std::make_unique<TlsTransport>(std::move(socket), client_context(endpoint.tls), name);
}

}  // namespace workq::redis
