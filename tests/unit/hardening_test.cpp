#include "util/hardening.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "util/read_file.hpp"

using namespace workq;

namespace {

// An argument area laid out as the kernel lays out argv: the strings back to back, each with
// its NUL, and the pointer array NULL-terminated.
struct FakeArgv {
    explicit FakeArgv(const std::vector<std::string>& args) {
        for (const auto& arg : args) {
            area.insert(area.end(), arg.begin(), arg.end());
            area.push_back('\0');
        }
        std::size_t offset = 0;
        for (const auto& arg : args) {
            pointers.push_back(area.data() + offset);
            offset += arg.size() + 1;
        }
        pointers.push_back(nullptr);
    }
    std::vector<char> area;
    std::vector<char*> pointers;
    // What /proc/<pid>/cmdline would show: up to the first NUL when the last byte is not NUL.
    std::string shown() const {
        if (area.back() != '\0') return std::string(area.data());
        return std::string(area.begin(), area.end());
    }
};

}  // namespace

TEST(Hardening, EraseEnvironmentVariableRemovesItAndItsBytes) {
    ASSERT_EQ(::setenv("WORKQ_TEST_SECRET", "hunter2", 1), 0);
    char* entry = std::getenv("WORKQ_TEST_SECRET") - std::strlen("WORKQ_TEST_SECRET=");
    erase_environment_variable("WORKQ_TEST_SECRET");
    EXPECT_EQ(std::getenv("WORKQ_TEST_SECRET"), nullptr);
    // The bytes the entry held (in /proc/<pid>/environ for an inherited variable) are gone.
    EXPECT_EQ(entry[0], '\0');
    erase_environment_variable("WORKQ_TEST_NOT_SET");  // nothing to do, no harm
}

TEST(Hardening, EraseEnvironmentVariableLeavesLookalikes) {
    ASSERT_EQ(::setenv("WORKQ_TEST_SECRET_2", "keep", 1), 0);
    erase_environment_variable("WORKQ_TEST_SECRET");
    ASSERT_NE(std::getenv("WORKQ_TEST_SECRET_2"), nullptr);
    EXPECT_STREQ(std::getenv("WORKQ_TEST_SECRET_2"), "keep");
    ::unsetenv("WORKQ_TEST_SECRET_2");
}

TEST(Hardening, ReplaceCommandLineHidesEverythingIncludingLengths) {
    FakeArgv argv({"workq-work", "--redis", "redis://:a-long-password@h", "q"});
    ASSERT_TRUE(replace_command_line(argv.pointers.data(), "workq-work --redis redis://:***@h q"));
    EXPECT_EQ(argv.shown(), "workq-work --redis redis://:***@h q");
    EXPECT_EQ(std::string(argv.area.begin(), argv.area.end()).find("long-password"),
              std::string::npos);
}

TEST(Hardening, ReplaceCommandLineCutsWhatDoesNotFit) {
    FakeArgv argv({"ab", "cd"});  // 6 bytes: room for 4 characters
    ASSERT_TRUE(replace_command_line(argv.pointers.data(), "0123456789"));
    EXPECT_EQ(argv.shown(), "0123");
}

TEST(Hardening, ReplaceCommandLineRefusesAreasItDoesNotKnow) {
    std::string first = "a", second = "b";  // not back to back
    std::vector<char*> pointers{first.data(), second.data(), nullptr};
    EXPECT_FALSE(replace_command_line(pointers.data(), "x"));
    EXPECT_EQ(first, "a");
}

TEST(Hardening, HidePasswordsInArgvMasksOnlyRedisUrlsBeforeTheSeparator) {
    FakeArgv argv({"workq-enqueue", "--redis", "redis://u:pw-1@h:1", "--redis=redis://:pw-2@h", "q",
                   "--", "redis://:payload@h"});
    cli::hide_passwords_in_argv(argv.pointers.data());
    EXPECT_EQ(argv.shown(),
              "workq-enqueue --redis redis://u:***@h:1 --redis=redis://:***@h q -- "
              "redis://:payload@h");
}

TEST(Hardening, HidePasswordsInArgvLeavesArgvWithoutPasswordsAlone) {
    FakeArgv argv({"workq-status", "--redis", "redis://h:1"});
    auto before = argv.area;
    cli::hide_passwords_in_argv(argv.pointers.data());
    EXPECT_EQ(argv.area, before);
}

TEST(Hardening, MakePrivateDirectoriesMakesEveryLevel0700) {
    auto base =
        std::filesystem::temp_directory_path() / ("workq-hardening-" + std::to_string(::getpid()));
    auto old_mask = ::umask(0);
    auto error = make_private_directories(base / "a" / "b");
    ::umask(old_mask);
    ASSERT_FALSE(error) << error.message();
    for (const auto& dir : {base, base / "a", base / "a" / "b"}) {
        struct stat info {};
        ASSERT_EQ(::stat(dir.c_str(), &info), 0);
        EXPECT_EQ(info.st_mode & 0777, 0700u) << dir;
    }
    std::ofstream(base / "file") << "x";
    EXPECT_EQ(make_private_directories(base / "file"),
              std::make_error_code(std::errc::not_a_directory));
    std::filesystem::remove_all(base);
}

TEST(Hardening, ReadBoundedStopsAtTheLimit) {
    auto zero = read_bounded("/dev/zero", 1000);
    EXPECT_EQ(zero.status, BoundedRead::Status::too_large);
    auto file =
        std::filesystem::temp_directory_path() / ("workq-bounded-" + std::to_string(::getpid()));
    std::ofstream(file) << std::string(1000, 'x');
    auto exact = read_bounded(file.string(), 1000);
    EXPECT_EQ(exact.status, BoundedRead::Status::ok);
    EXPECT_EQ(exact.text.size(), 1000u);
    EXPECT_EQ(read_bounded(file.string(), 999).status, BoundedRead::Status::too_large);
    std::filesystem::remove(file);
    auto missing = read_bounded(file.string(), 10);
    EXPECT_EQ(missing.status, BoundedRead::Status::failed);
    EXPECT_EQ(missing.error, ENOENT);
}
