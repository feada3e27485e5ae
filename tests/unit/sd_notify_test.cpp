#include "util/sd_notify.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "test_env.hpp"
#include "util/fd.hpp"

using namespace workq;
using namespace std::chrono_literals;

namespace {

// A datagram socket bound where systemd would listen: a path, or @name (abstract).
UniqueFd listen_at(const std::string& where) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, where.data(), where.size());
    bool abstract = where[0] == '@';
    if (abstract) address.sun_path[0] = '\0';
    auto size =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + where.size() + (abstract ? 0 : 1));
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), size), 0)
        << std::strerror(errno);
    return fd;
}

std::string receive(const UniqueFd& fd) {
    char buffer[4096];
    ssize_t got = ::recv(fd.get(), buffer, sizeof buffer, 0);
    return got < 0 ? std::string("<nothing>") : std::string(buffer, static_cast<size_t>(got));
}

}  // namespace

TEST(SdNotify, SendsOneDatagramToThePathInNotifySocket) {
    test::TempDir dir;
    auto path = (dir.path() / "notify.sock").string();
    auto listener = listen_at(path);
    test::EnvVar env("NOTIFY_SOCKET", path);
    EXPECT_TRUE(sd_notify("READY=1\nSTATUS=running"));
    EXPECT_EQ(receive(listener), "READY=1\nSTATUS=running");
}

TEST(SdNotify, AnAtSignNamesAnAbstractSocket) {
    std::string name = "@workq-unit-" + std::to_string(::getpid());
    auto listener = listen_at(name);
    test::EnvVar env("NOTIFY_SOCKET", name);
    EXPECT_TRUE(sd_notify("WATCHDOG=1"));
    EXPECT_EQ(receive(listener), "WATCHDOG=1");
}

TEST(SdNotify, WithoutASocketOrAListenerItReportsFalseAndNeverThrows) {
    test::EnvVar unset("NOTIFY_SOCKET", std::nullopt);
    EXPECT_FALSE(sd_notify("READY=1"));
    test::EnvVar relative("NOTIFY_SOCKET", "relative/path");
    EXPECT_FALSE(sd_notify("READY=1"));
    test::EnvVar nobody("NOTIFY_SOCKET", "/nonexistent/notify.sock");
    EXPECT_FALSE(sd_notify("READY=1"));
    test::EnvVar too_long("NOTIFY_SOCKET", "/" + std::string(200, 'x'));
    EXPECT_FALSE(sd_notify("READY=1"));
}

TEST(SdNotify, WatchdogIntervalIsHalfTheTimeoutForThisProcess) {
    test::EnvVar pid("WATCHDOG_PID", std::nullopt);
    test::EnvVar usec("WATCHDOG_USEC", "30000000");
    EXPECT_EQ(sd_watchdog_interval(), Millis(15000));
    pid.set(std::to_string(::getpid()));
    EXPECT_EQ(sd_watchdog_interval(), Millis(15000));
    pid.set(std::to_string(::getpid() + 1));  // meant for another process
    EXPECT_EQ(sd_watchdog_interval(), std::nullopt);
    pid.set(std::nullopt);
    usec.set("1000");  // 1 ms: still a positive interval
    EXPECT_EQ(sd_watchdog_interval(), Millis(1));
    for (const char* bad : {"", "0", "-5", "12x", "abc"}) {
        usec.set(std::string(bad));
        EXPECT_EQ(sd_watchdog_interval(), std::nullopt) << bad;
    }
    usec.set(std::nullopt);
    EXPECT_EQ(sd_watchdog_interval(), std::nullopt);
}

TEST(SdNotify, StatusTextIsOneLine) {
    EXPECT_EQ(sd_status_line("draining: SIGTERM"), "draining: SIGTERM");
    EXPECT_EQ(sd_status_line("error: --on-start failed\nexit 1\r"),
              "error: --on-start failed exit 1 ");
}
