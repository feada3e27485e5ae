#include "cli/server.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "test_env.hpp"
#include "util/errors.hpp"
#include "util/log.hpp"

using namespace workq;
using namespace workq::cli;
using workq::test::CaptureStderr;
using workq::test::contains;
using workq::test::EnvVar;
using workq::test::TempDir;
using workq::test::usage_error;

namespace {

void set(Config& config, const std::string& table, const std::string& key, const std::string& value,
         const std::string& origin) {
    config.tables[table][key] = ConfigValue{{value}, origin};
}

// Every variable resolve_server reads, unset for the test and restored after it, so that the
// machine's own settings (a REDIS_URL in the CI environment...) cannot leak in.
class ResolveServer : public ::testing::Test {
  protected:
    EnvVar url_{"WORKQ_REDIS_URL", std::nullopt};
    EnvVar redis_url_{"REDIS_URL", std::nullopt};
    EnvVar password_{"WORKQ_REDIS_PASSWORD", std::nullopt};
    EnvVar namespace_{"WORKQ_NAMESPACE", std::nullopt};
    EnvVar tls_ca_{"WORKQ_TLS_CA_CERT", std::nullopt};
    EnvVar tls_cert_{"WORKQ_TLS_CERT", std::nullopt};
    EnvVar tls_key_{"WORKQ_TLS_KEY", std::nullopt};
    EnvVar tls_name_{"WORKQ_TLS_SERVER_NAME", std::nullopt};
    CommonOptions options_;
    Config config_;
    TempDir dir_;

    ServerSettings resolve(const std::string& tool = "work") {
        return resolve_server(options_, config_, tool);
    }
};

}  // namespace

TEST_F(ResolveServer, NothingConfiguredMeansTheEmbeddedServer) {
    auto settings = resolve();
    EXPECT_TRUE(settings.embedded);
    EXPECT_EQ(settings.source, "embedded");
    EXPECT_EQ(settings.endpoint.kind, redis::Endpoint::Kind::unix_socket);
    EXPECT_EQ(settings.endpoint.password, "");
    EXPECT_EQ(settings.namespace_name, "workq");
}

TEST_F(ResolveServer, UrlPrecedenceFlagEnvToolTableRedisTableRedisUrlEmbedded) {
    options_.redis_url = "redis://flag";
    url_.set("redis://workq-env");
    set(config_, "work", "redis", "redis://tool-table", "c.toml:7");
    set(config_, "redis", "url", "redis://redis-table", "c.toml:2");
    redis_url_.set("redis://redis-url");

    auto settings = resolve();
    EXPECT_EQ(settings.endpoint.host, "flag");
    EXPECT_EQ(settings.source, "--redis");
    EXPECT_FALSE(settings.embedded);

    options_.redis_url.clear();
    settings = resolve();
    EXPECT_EQ(settings.endpoint.host, "workq-env");
    EXPECT_EQ(settings.source, "WORKQ_REDIS_URL");

    url_.set(std::nullopt);
    settings = resolve();
    EXPECT_EQ(settings.endpoint.host, "tool-table");
    EXPECT_EQ(settings.source, "c.toml:7");

    settings = resolve("enqueue");  // another tool's table is not ours
    EXPECT_EQ(settings.endpoint.host, "redis-table");
    EXPECT_EQ(settings.source, "c.toml:2");

    config_.tables.erase("redis");
    settings = resolve("enqueue");
    EXPECT_EQ(settings.endpoint.host, "redis-url");
    EXPECT_EQ(settings.source, "REDIS_URL");
    EXPECT_FALSE(settings.embedded);

    redis_url_.set(std::nullopt);
    settings = resolve("enqueue");
    EXPECT_TRUE(settings.embedded);
}

TEST_F(ResolveServer, EmptyVariablesCountAsUnset) {
    url_.set("");
    redis_url_.set("");
    password_.set("");
    namespace_.set("");
    auto settings = resolve();
    EXPECT_TRUE(settings.embedded);
    EXPECT_EQ(settings.endpoint.password, "");
    EXPECT_EQ(settings.namespace_name, "workq");
}

TEST_F(ResolveServer, AnUnusedLowerLevelIsNotEvenParsed) {
    url_.set("unix:///run/redis.sock?db=2");
    redis_url_.set("rediss://managed.example.com:6380");  // set by some other tool
    auto settings = resolve();
    EXPECT_EQ(settings.endpoint.kind, redis::Endpoint::Kind::unix_socket);
    EXPECT_EQ(settings.endpoint.socket_path, "/run/redis.sock");
    EXPECT_EQ(settings.endpoint.database, 2);
}

TEST_F(ResolveServer, AMalformedUrlNamesItsSource) {
    options_.redis_url = "redis://host:99999";
    auto message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, "--redis")) << message;
    EXPECT_TRUE(contains(message, "port")) << message;
    options_.redis_url.clear();

    url_.set("http://host");
    message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, "WORKQ_REDIS_URL")) << message;
    EXPECT_TRUE(contains(message, "unknown scheme")) << message;
    url_.set(std::nullopt);

    set(config_, "redis", "url", "rediss://tls.example.com:0", "/etc/workq/config.toml:4");
    message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, "/etc/workq/config.toml:4")) << message;
    EXPECT_TRUE(contains(message, "port")) << message;
    config_.tables.clear();

    redis_url_.set("localhost:6379");
    message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, "REDIS_URL")) << message;
    EXPECT_TRUE(contains(message, "localhost:6379")) << message;
}

TEST_F(ResolveServer, TlsSettingsRankFlagEnvToolTableRedisTable) {
    url_.set("rediss://cache.example.com");
    EXPECT_TRUE(resolve().endpoint.tls.enabled);
    EXPECT_EQ(resolve().endpoint.tls.server_name, "");
    set(config_, "redis", "tls_server_name", "from-redis-table", "c.toml:2");
    EXPECT_EQ(resolve().endpoint.tls.server_name, "from-redis-table");
    set(config_, "work", "tls-server-name", "from-tool-table", "c.toml:5");
    EXPECT_EQ(resolve().endpoint.tls.server_name, "from-tool-table");
    EXPECT_EQ(resolve("status").endpoint.tls.server_name, "from-redis-table");
    tls_name_.set("from-env");
    EXPECT_EQ(resolve().endpoint.tls.server_name, "from-env");
    options_.tls_server_name = "from-flag";
    EXPECT_EQ(resolve().endpoint.tls.server_name, "from-flag");
}

TEST_F(ResolveServer, TlsSettingsWithoutRedissAreUsageErrorsNamingTheirSource) {
    url_.set("redis://cache.example.com");
    options_.tls_server_name = "x";
    auto message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, "--tls-server-name")) << message;
    EXPECT_TRUE(contains(message, "rediss://")) << message;
    options_.tls_server_name.clear();
    url_.set(std::nullopt);  // the embedded server
    set(config_, "redis", "tls_ca_cert", "/etc/ssl/certs", "c.toml:7");
    message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, "c.toml:7")) << message;
    EXPECT_TRUE(contains(message, "embedded")) << message;
}

TEST_F(ResolveServer, AClientCertificateWithoutItsKeyIsAUsageError) {
    url_.set("rediss://cache.example.com");
    tls_cert_.set(dir_.write("client.crt", "x").string());
    auto message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, "WORKQ_TLS_CERT")) << message;
    EXPECT_TRUE(contains(message, "--tls-key")) << message;
    tls_key_.set((dir_.path() / "missing.key").string());
    message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, "WORKQ_TLS_KEY")) << message;
    EXPECT_TRUE(contains(message, "missing.key")) << message;
}

TEST_F(ResolveServer, PasswordPrecedenceFileFlagEnvConfigFileUrl) {
    options_.redis_url = "redis://:from-url@host";
    options_.password_file = dir_.write("flag.pw", "from-flag-file\n").string();
    password_.set("from-env");
    set(config_, "work", "password-file", dir_.write("tool.pw", "from-tool-table").string(),
        "c.toml:9");
    set(config_, "redis", "password_file", dir_.write("redis.pw", "from-redis-table\r\n").string(),
        "c.toml:3");

    CaptureStderr quiet;  // the password in --redis is warned about; not this test's subject
    EXPECT_EQ(resolve().endpoint.password, "from-flag-file");
    options_.password_file.clear();
    // Each resolve takes the variable out of the environment (issue 23): set it again.
    password_.set("from-env");
    EXPECT_EQ(resolve().endpoint.password, "from-env");
    password_.set(std::nullopt);
    EXPECT_EQ(resolve().endpoint.password, "from-tool-table");
    EXPECT_EQ(resolve("enqueue").endpoint.password, "from-redis-table");
    config_.tables.clear();
    EXPECT_EQ(resolve().endpoint.password, "from-url");
}

TEST_F(ResolveServer, ThePasswordLeavesTheEnvironmentOnceRead) {
    password_.set("from-env");
    redis_url_.set("redis://:in-url@host");
    url_.set("redis://host");
    EXPECT_EQ(resolve().endpoint.password, "from-env");
    EXPECT_EQ(std::getenv("WORKQ_REDIS_PASSWORD"), nullptr);
    EXPECT_EQ(std::getenv("REDIS_URL"), nullptr);        // it held a password
    ASSERT_NE(std::getenv("WORKQ_REDIS_URL"), nullptr);  // it did not
    EXPECT_STREQ(std::getenv("WORKQ_REDIS_URL"), "redis://host");
}

TEST_F(ResolveServer, APasswordFileKeepsInnerSpacesAndDropsTheLineEnd) {
    options_.password_file = dir_.write("pw", "  two words \n").string();
    url_.set("redis://host");
    EXPECT_EQ(resolve().endpoint.password, "  two words ");
}

TEST_F(ResolveServer, AMissingPasswordFileIsAUsageErrorNamingIt) {
    url_.set("redis://host");
    auto missing = (dir_.path() / "no-such.pw").string();
    options_.password_file = missing;
    auto message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, missing)) << message;
    EXPECT_TRUE(contains(message, "No such file")) << message;

    options_.password_file.clear();
    set(config_, "redis", "password_file", missing, "c.toml:3");
    message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, missing)) << message;
}

TEST_F(ResolveServer, AnEmptyPasswordFileIsAUsageError) {
    url_.set("redis://host");
    for (const char* text : {"", "\n", "\r\n\n"}) {
        options_.password_file = dir_.write("empty.pw", text).string();
        auto message = usage_error([&] { resolve(); });
        EXPECT_TRUE(contains(message, options_.password_file)) << message;
        EXPECT_TRUE(contains(message, "empty")) << message;
    }
}

TEST_F(ResolveServer, ADirectoryIsNotAPasswordFile) {
    url_.set("redis://host");
    options_.password_file = dir_.path().string();
    auto message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, dir_.path().string())) << message;
    EXPECT_TRUE(contains(message, "directory")) << message;
}

TEST_F(ResolveServer, AnUnreadablePasswordFileIsAUsageError) {
    if (::geteuid() == 0) GTEST_SKIP() << "root reads every file";
    url_.set("redis://host");
    options_.password_file = dir_.write("locked.pw", "secret\n").string();
    ::chmod(options_.password_file.c_str(), 0);
    auto message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, "Permission denied")) << message;
}

TEST_F(ResolveServer, APasswordOnTheCommandLineIsAcceptedWithAWarningThatHidesIt) {
    log::configure("workq-test", log::Level::info, log::Format::human);
    options_.redis_url = "redis://app:hunter2@host";
    CaptureStderr capture;
    auto settings = resolve();
    auto err = capture.text();
    EXPECT_EQ(settings.endpoint.password, "hunter2");
    EXPECT_EQ(settings.endpoint.username, "app");
    EXPECT_TRUE(contains(err, "workq-test: warning:")) << err;
    EXPECT_TRUE(contains(err, "--password-file")) << err;
    EXPECT_FALSE(contains(err, "hunter2")) << err;

    options_.redis_url = "redis://:hun/t3r@2@host";  // unescaped '/' and '@' in the password
    CaptureStderr again;
    settings = resolve();
    err = again.text();
    EXPECT_EQ(settings.endpoint.password, "hun/t3r@2");
    EXPECT_TRUE(contains(err, "warning")) << err;
    EXPECT_FALSE(contains(err, "t3r")) << err;
}

TEST_F(ResolveServer, NoWarningWithoutAPasswordOnTheCommandLine) {
    log::configure("workq-test", log::Level::info, log::Format::human);
    options_.redis_url = "redis://app@host";
    url_.set("redis://:env-secret@host");  // the environment is not visible in `ps`
    CaptureStderr capture;
    resolve();
    options_.redis_url.clear();
    resolve();
    EXPECT_EQ(capture.text(), "");
}

TEST_F(ResolveServer, NamespacePrecedenceFlagEnvToolTableTopLevelDefault) {
    options_.namespace_name = "from-flag";
    namespace_.set("from-env");
    set(config_, "work", "namespace", "from-tool", "c.toml:5");
    set(config_, "", "namespace", "from-top", "c.toml:1");

    EXPECT_EQ(resolve().namespace_name, "from-flag");
    options_.namespace_name.clear();
    EXPECT_EQ(resolve().namespace_name, "from-env");
    namespace_.set(std::nullopt);
    EXPECT_EQ(resolve().namespace_name, "from-tool");
    EXPECT_EQ(resolve("status").namespace_name, "from-top");
    config_.tables.clear();
    EXPECT_EQ(resolve().namespace_name, "workq");
}

TEST_F(ResolveServer, AnInvalidNamespaceIsAUsageError) {
    for (const char* bad : {"{tag}", "a:b", "has space", "-x", "*"}) {
        namespace_.set(bad);
        auto message = usage_error([&] { resolve(); });
        EXPECT_TRUE(contains(message, "namespace")) << message;
        EXPECT_TRUE(contains(message, bad)) << message;
    }
    namespace_.set(std::nullopt);
    options_.namespace_name = std::string(65, 'n');
    auto message = usage_error([&] { resolve(); });
    EXPECT_TRUE(contains(message, "longer than 64")) << message;
    options_.namespace_name = std::string(64, 'n');
    EXPECT_EQ(resolve().namespace_name, std::string(64, 'n'));
}
