#include "serve.hpp"

#include <fmt/format.h>
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <optional>

#include "http/server.hpp"
#include "render.hpp"
#include "snapshot.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"

namespace workq::status {

int serve(cli::ServerSettings& server, const std::vector<std::string>& queues,
          const http::ListenAddress& address) {
    // A wrong URL or password is reported now, as every tool does, rather than as a 503 on the
    // first scrape.
    std::optional<redis::Connection> connection = cli::connect(server);
    bool warned = false;

    http::Router router;
    router.handle("/livez", [](const http::Request&) { return http::text_response(200, "ok"); });
    // The scrape blocks the loop while it talks to Redis (at most the connection's timeouts);
    // other clients wait meanwhile, which costs an exporter nothing.
    router.handle("/metrics", [&](const http::Request&) {
        try {
            if (!connection) connection = cli::connect(server);
            auto snapshot = take_snapshot(*connection, server, queues);
            if (!warned) {
                // Once per run, as the other modes do (CONTRACT.md section 2).
                for (const auto& warning : snapshot.server.warnings)
                    log::warn(warning);
                warned = true;
            }
            http::Response response;
            response.content_type = "text/plain; version=0.0.4; charset=utf-8";
            response.body = render_prometheus(snapshot);
            return response;
        } catch (const Error& error) {
            // A failed connection cannot be reused (redis/connection.hpp): the next scrape makes
            // a new one.
            connection.reset();
            log::error(fmt::format("a scrape failed: {}", error.what()));
            return http::text_response(503,
                                       fmt::format("cannot read the queues: {}", error.what()));
        }
    });

    boost::asio::io_context io;
    http::Server http_server(io, address, std::move(router));
    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& error, int) {
        if (error) return;
        // The closed sockets' operations end on the loop, and run() returns when none is left.
        http_server.stop();
    });
    auto where = http::describe(http_server.local_address());
    log::info(fmt::format("serving http://{}/metrics and /livez", where),
              {{"namespace", server.namespace_name}});
    io.run();
    log::info("stopped");
    return 0;
}

}  // namespace workq::status
