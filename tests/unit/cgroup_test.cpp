// Where a process's cgroup v2 is (util/cgroup.hpp), from /proc/PID/cgroup and mountinfo texts.
#include <gtest/gtest.h>

#include "util/cgroup.hpp"

namespace workq::test {
namespace {

constexpr const char* unified_mount =
    "24 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

TEST(LocateCgroupV2, JoinsTheMountAndThePath) {
    auto where = locate_cgroup_v2("0::/system.slice/workq.service\n", unified_mount);
    ASSERT_TRUE(where);
    EXPECT_EQ(where->dir, "/sys/fs/cgroup/system.slice/workq.service");
    EXPECT_EQ(where->relative, "/system.slice/workq.service");
}

TEST(LocateCgroupV2, TheRootIsTheMountItself) {
    auto where = locate_cgroup_v2("0::/\n", unified_mount);
    ASSERT_TRUE(where);
    EXPECT_EQ(where->dir, "/sys/fs/cgroup");
    EXPECT_EQ(where->relative, "/");
}

TEST(LocateCgroupV2, HybridSystemsMountItUnderUnified) {
    auto cgroup =
        "12:memory:/user.slice\n1:name=systemd:/user.slice/x.scope\n0::/user.slice/x.scope\n";
    auto mounts =
        "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "31 25 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n";
    auto where = locate_cgroup_v2(cgroup, mounts);
    ASSERT_TRUE(where);
    EXPECT_EQ(where->dir, "/sys/fs/cgroup/unified/user.slice/x.scope");
}

TEST(LocateCgroupV2, AMountOfASubtreeIsJoinedBelowItsRoot) {
    auto mounts = "40 30 0:22 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    auto where = locate_cgroup_v2("0::/kubepods/pod1/app\n", mounts);
    ASSERT_TRUE(where);
    EXPECT_EQ(where->dir, "/sys/fs/cgroup/app");
    EXPECT_FALSE(locate_cgroup_v2("0::/elsewhere\n", mounts));
}

TEST(LocateCgroupV2, EscapedMountPointsAreDecoded) {
    auto mounts = "40 30 0:22 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n";
    auto where = locate_cgroup_v2("0::/a\n", mounts);
    ASSERT_TRUE(where);
    EXPECT_EQ(where->dir, "/mnt/cg two/a");
}

TEST(LocateCgroupV2, NoneWithoutAV2LineOrMount) {
    EXPECT_FALSE(locate_cgroup_v2("4:memory:/x\n", unified_mount));
    EXPECT_FALSE(locate_cgroup_v2("0::/x\n",
                                  "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup "
                                  "cgroup rw,memory\n"));
    EXPECT_FALSE(locate_cgroup_v2("0::/x (deleted)\n", unified_mount));
    EXPECT_FALSE(locate_cgroup_v2("", ""));
}

}  // namespace
}  // namespace workq::test
