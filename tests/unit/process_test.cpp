// The orphan guard (util/process.hpp): what it kills when the worker's pipe closes.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace
}  // namespace workq::test
