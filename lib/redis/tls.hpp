// TLS for the transport (redis/transport.hpp), with OpenSSL 3: the server's certificate chain
// and name are always verified (CONTRACT.md section 10: there is no switch to turn that off),
// TLS 1.2 at least, SNI for host names, an optional client certificate (mutual TLS).
#pragma once

#include <memory>

#include "redis/transport.hpp"
#include "redis/url.hpp"

namespace workq::redis {

// Loads what the settings name (the CA certificates, the client certificate and its key) into
// a client context, kept for every later connection with the same settings. Throws UsageError
// naming the file and what is wrong with it: missing, unreadable, not PEM, a key that does not
// belong to the certificate, an encrypted key (it would need a passphrase at every start).
void check_tls_settings(const TlsSettings& settings);

// Wraps a connected TCP socket in TLS for `endpoint` (its tls settings, and its host as the
// name to verify unless they name another). The handshake happens in the transport's
// handshake(). Throws UsageError as check_tls_settings does.
std::unique_ptr<Transport> make_tls_transport(UniqueFd socket, const Endpoint& endpoint);

}  // namespace workq::redis
