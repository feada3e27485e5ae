// The orphan guard (util/process.hpp): what it kills when the worker's pipe closes.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "redis_fixture.hpp"  // wait_until
#include "util/process.hpp"

extern char** environ;

namespace workq::test {
namespace {

// `sleep 60` as the leader of a process group of its own.
pid_t start_group_leader() {
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    pid_t pid = -1;
    char sleep_name[] = "sleep", sixty[] = "60";
    char* argv[] = {sleep_name, sixty, nullptr};
    int rc = posix_spawnp(&pid, "sleep", nullptr, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? pid : -1;
}

// Reaps `pid` if it has ended; true then, with its wait status.
bool ended(pid_t pid, int& status) {
    return ::waitpid(pid, &status, WNOHANG) == pid;
}

// Issue 23, item 1: the guard kept at most 8,192 groups, so the groups of a worker with more
// slots escaped its kill -9. Here the first group is registered 8,192 times (the guard keeps
// duplicates: a group is forgotten once per registration), the second after them.
TEST(GroupGuard, KillsEveryRegisteredGroupPastEightThousand) {
    auto guard = GroupGuard::start();
    pid_t first = start_group_leader(), second = start_group_leader();
    ASSERT_GT(first, 0);
    ASSERT_GT(second, 0);
    for (int i = 0; i < 8192; ++i)
        guard.adopt(first);
    guard.adopt(second);
    guard.stop();  // as when the worker dies: the pipe closes, the guard kills and exits
    int first_status = 0, second_status = 0;
    bool first_gone = wait_until([&] { return ended(first, first_status); }, 10000ms, 10ms);
    bool second_gone = wait_until([&] { return ended(second, second_status); }, 10000ms, 10ms);
    // Leave nothing behind whatever happened.
    if (!first_gone) ::kill(-first, SIGKILL), ::waitpid(first, nullptr, 0);
    if (!second_gone) ::kill(-second, SIGKILL), ::waitpid(second, nullptr, 0);
    ASSERT_TRUE(first_gone);
    ASSERT_TRUE(second_gone) << "the group registered after 8,192 others escaped the guard";
    EXPECT_TRUE(WIFSIGNALED(second_status) && WTERMSIG(second_status) == SIGKILL);
}

// Whether `pid` has ended (gone, or a zombie nobody reaped yet).
bool gone(pid_t pid) {
    if (::kill(pid, 0) != 0) return true;
    FILE* stat = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (!stat) return true;
    char text[512] = {};
    std::size_t got = std::fread(text, 1, sizeof text - 1, stat);
    std::fclose(stat);
    const char* close = std::strrchr(text, ')');
    return got == 0 || !close || close[2] == 'Z';
}

// The first child of `parent` (from /proc), or -1.
pid_t first_child_of(pid_t parent) {
    std::ifstream file("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                       "/children");
    pid_t child = -1;
    file >> child;
    return child;
}

pid_t spawn_argv(std::vector<std::string> args, bool own_group, char** env = environ) {
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    if (own_group) {
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    }
    std::vector<char*> argv;
    for (auto& arg : args)
        argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), env);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? pid : -1;
}

// Issue 23, item 8: a handler's child that leaves the process group (setsid, timeout) escaped
// the guard's kill of that group.
TEST(GroupGuard, KillsADescendantThatLeftTheRegisteredGroup) {
    auto guard = GroupGuard::start();
    pid_t leader = spawn_argv({"sh", "-c", "setsid sleep 61 & wait"}, true);
    ASSERT_GT(leader, 0);
    pid_t escaped = -1;
    ASSERT_TRUE(wait_until([&] { return (escaped = first_child_of(leader)) > 0; }, 5000ms, 10ms));
    ASSERT_TRUE(wait_until([&] { return ::getpgid(escaped) == escaped; }, 5000ms, 10ms))
        << "the child did not leave the group";
    guard.adopt(leader);
    guard.stop();
    bool escaped_gone = wait_until([&] { return gone(escaped); }, 10000ms, 10ms);
    int status = 0;
    bool leader_gone = wait_until([&] { return ended(leader, status); }, 10000ms, 10ms);
    if (!escaped_gone) ::kill(escaped, SIGKILL);
    if (!leader_gone) ::kill(-leader, SIGKILL), ::waitpid(leader, nullptr, 0);
    EXPECT_TRUE(leader_gone);
    EXPECT_TRUE(escaped_gone) << "the setsid child of a registered group survived the guard";
}

// An orphan no group or parentage leads to: found by the exact environment entry it carries.
TEST(GroupGuard, KillsWhatCarriesItsMarkerAndNothingElse) {
    GuardScope scope;
    scope.marker = "WORKQ_TEST_MARK=m" + std::to_string(::getpid());
    auto marked_entry = scope.marker;
    auto longer_entry = scope.marker + "x";
    char* marked_env[] = {marked_entry.data(), nullptr};
    char* longer_env[] = {longer_entry.data(), nullptr};
    auto guard = GroupGuard::start(scope);
    pid_t marked = spawn_argv({"sleep", "62"}, true, marked_env);
    pid_t other = spawn_argv({"sleep", "63"}, true, longer_env);
    ASSERT_GT(marked, 0);
    ASSERT_GT(other, 0);
    guard.stop();
    int status = 0;
    bool marked_gone = wait_until([&] { return ended(marked, status); }, 10000ms, 10ms);
    bool other_gone = ended(other, status);
    if (!marked_gone) ::kill(marked, SIGKILL), ::waitpid(marked, nullptr, 0);
    ::kill(other, SIGKILL);
    ::waitpid(other, nullptr, 0);
    EXPECT_TRUE(marked_gone) << "the process carrying the marker survived";
    EXPECT_FALSE(other_gone) << "a process with a different entry was killed";
}

}  // namespace
}  // namespace workq::test
