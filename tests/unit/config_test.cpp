#include "cli/config.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cli/options.hpp"
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
namespace fs = std::filesystem;

namespace {

std::vector<std::string> items(const Config& config, const std::string& table,
                               const std::string& key) {
    const auto* value = config.find(table, key);
    return value ? value->items : std::vector<std::string>{"<missing>"};
}

bool system_file_exists() {
    std::error_code ec;
    return fs::exists("/etc/workq/config.toml", ec);
}

// A workq-work-like command line: options of every kind apply_config has to fill.
struct WorkApp {
    CLI::App app{"test tool", "workq-test"};
    CommonOptions common;
    int concurrency = 1;
    std::string timeout = "5m";
    double ratio = 0;
    bool burst = false;
    bool arg = false;
    std::vector<std::string> tags;
    int percent = 50;

    WorkApp() {
        app.add_option("-c,--concurrency", concurrency, "jobs at once");
        app.add_option("--timeout", timeout, "per job");
        app.add_option("--ratio", ratio, "a fraction");
        app.add_flag("--burst", burst, "burst");
        app.add_flag("--arg", arg, "payload as argument");
        app.add_option("--tag", tags, "tags, repeatable");
        app.add_option("--percent", percent, "0 to 100")->check(CLI::Range(0, 100));
        add_common_options(app, common);
    }

    void parse(const std::string& command_line) { app.parse(command_line, false); }
};

// Loads `toml` as the only config file and applies its [work] table to `tool`, collecting the
// warnings.
std::vector<std::string> apply(WorkApp& tool, const TempDir& dir, const std::string& toml) {
    auto file = dir.write("config.toml", toml);
    auto config = load_config(file.string());
    std::vector<std::string> warnings;
    apply_config(tool.app, config, "work",
                 [&](const std::string& warning) { warnings.push_back(warning); });
    return warnings;
}

}  // namespace

// --- which files ----------------------------------------------------------------------------

TEST(ConfigFiles, SystemFileThenXdgConfigHome) {
    EnvVar xdg("XDG_CONFIG_HOME", "/srv/conf");
    EXPECT_EQ(config_files(std::nullopt),
              (std::vector<fs::path>{"/etc/workq/config.toml", "/srv/conf/workq/config.toml"}));
}

TEST(ConfigFiles, HomeConfigWhenXdgConfigHomeIsUnsetOrEmpty) {
    EnvVar home("HOME", "/home/ann");
    for (const auto& xdg_value : {std::optional<std::string>{}, std::optional<std::string>{""}}) {
        EnvVar xdg("XDG_CONFIG_HOME", xdg_value);
        EXPECT_EQ(config_files(std::nullopt),
                  (std::vector<fs::path>{"/etc/workq/config.toml",
                                         "/home/ann/.config/workq/config.toml"}));
    }
}

TEST(ConfigFiles, AnExplicitFileIsTheOnlyOne) {
    EnvVar xdg("XDG_CONFIG_HOME", "/srv/conf");
    EXPECT_EQ(config_files("/tmp/mine.toml"), (std::vector<fs::path>{"/tmp/mine.toml"}));
}

// --- loading --------------------------------------------------------------------------------

TEST(LoadConfig, ReadsEveryKindOfValueWithItsFileAndLine) {
    TempDir dir;
    auto file = dir.write("c.toml", R"(namespace = "jobs"

[redis]
url = "redis://cache:6380/2"
password_file = "/run/secrets/redis"

[work]
concurrency = 4
shutdown-timeout = "20s"
burst = true
arg = false
ratio = 0.25
tags = ["a", "b", 3]
)");
    auto config = load_config(file.string());
    EXPECT_EQ(config.files, std::vector<fs::path>{file});
    EXPECT_EQ(items(config, "", "namespace"), std::vector<std::string>{"jobs"});
    EXPECT_EQ(items(config, "redis", "url"), std::vector<std::string>{"redis://cache:6380/2"});
    EXPECT_EQ(items(config, "work", "concurrency"), std::vector<std::string>{"4"});
    EXPECT_EQ(items(config, "work", "shutdown-timeout"), std::vector<std::string>{"20s"});
    EXPECT_EQ(items(config, "work", "burst"), std::vector<std::string>{"true"});
    EXPECT_EQ(items(config, "work", "arg"), std::vector<std::string>{"false"});
    EXPECT_EQ(items(config, "work", "ratio"), std::vector<std::string>{"0.25"});
    EXPECT_EQ(items(config, "work", "tags"), (std::vector<std::string>{"a", "b", "3"}));
    EXPECT_EQ(config.find("work", "concurrency")->origin, file.string() + ":8");
    EXPECT_EQ(config.find("", "namespace")->origin, file.string() + ":1");
    EXPECT_EQ(config.find("work", "nothing"), nullptr);
    EXPECT_EQ(config.find("nothing", "concurrency"), nullptr);
}

TEST(LoadConfig, ReadsTheUserFileUnderXdgConfigHome) {
    if (system_file_exists()) GTEST_SKIP() << "/etc/workq/config.toml exists on this machine";
    TempDir dir;
    auto file = dir.write("xdg/workq/config.toml", "[work]\nconcurrency = 3\n");
    EnvVar xdg("XDG_CONFIG_HOME", (dir.path() / "xdg").string());
    auto config = load_config(std::nullopt);
    EXPECT_EQ(config.files, std::vector<fs::path>{file});
    EXPECT_EQ(items(config, "work", "concurrency"), std::vector<std::string>{"3"});
}

TEST(LoadConfig, ReadsTheUserFileUnderHomeWithoutXdgConfigHome) {
    if (system_file_exists()) GTEST_SKIP() << "/etc/workq/config.toml exists on this machine";
    TempDir dir;
    auto file = dir.write("home/.config/workq/config.toml", "namespace = \"mine\"\n");
    EnvVar xdg("XDG_CONFIG_HOME", std::nullopt);
    EnvVar home("HOME", (dir.path() / "home").string());
    auto config = load_config(std::nullopt);
    EXPECT_EQ(config.files, std::vector<fs::path>{file});
    EXPECT_EQ(items(config, "", "namespace"), std::vector<std::string>{"mine"});
}

TEST(LoadConfig, MissingDefaultFilesAreSkipped) {
    if (system_file_exists()) GTEST_SKIP() << "/etc/workq/config.toml exists on this machine";
    TempDir dir;
    EnvVar xdg("XDG_CONFIG_HOME", dir.path().string());
    auto config = load_config(std::nullopt);
    EXPECT_TRUE(config.files.empty());
    EXPECT_TRUE(config.tables.empty());
}

TEST(LoadConfig, AnExplicitFileIsTheOnlyFileRead) {
    TempDir dir;
    dir.write("xdg/workq/config.toml", "namespace = \"user\"\n[work]\nconcurrency = 3\n");
    auto explicit_file = dir.write("explicit.toml", "[work]\ntimeout = \"1m\"\n");
    EnvVar xdg("XDG_CONFIG_HOME", (dir.path() / "xdg").string());
    auto config = load_config(explicit_file.string());
    EXPECT_EQ(config.files, std::vector<fs::path>{explicit_file});
    EXPECT_EQ(items(config, "work", "timeout"), std::vector<std::string>{"1m"});
    EXPECT_EQ(config.find("work", "concurrency"), nullptr);
    EXPECT_EQ(config.find("", "namespace"), nullptr);
}

TEST(LoadConfig, AMalformedFileNamesFileAndLine) {
    TempDir dir;
    struct Case {
        const char* text;
        int line;
    };
    for (const auto& [text, line] : {
             Case{"[work]\nconcurrency = 4\nlease = = 3\n", 3},
             Case{"namespace = \"a\"\n[work\n", 2},
             Case{"[work]\n\n\ntimeout = \"5s\n", 4},
             Case{"[work]\nconcurrency = 1\nconcurrency = 2\n", 3},
             Case{"just some words\n", 1},
         }) {
        auto file = dir.write("bad.toml", text);
        auto message = usage_error([&] { load_config(file.string()); });
        EXPECT_TRUE(contains(message, file.string())) << message;
        EXPECT_TRUE(contains(message, "line " + std::to_string(line))) << message;
        EXPECT_TRUE(contains(message, "malformed")) << message;
    }
}

TEST(LoadConfig, AMalformedUserFileIsAnErrorToo) {
    if (system_file_exists()) GTEST_SKIP() << "/etc/workq/config.toml exists on this machine";
    TempDir dir;
    auto file = dir.write("workq/config.toml", "[work]\nconcurrency 4\n");
    EnvVar xdg("XDG_CONFIG_HOME", dir.path().string());
    auto message = usage_error([&] { load_config(std::nullopt); });
    EXPECT_TRUE(contains(message, file.string() + " line 2")) << message;
}

TEST(LoadConfig, AMissingExplicitFileIsAnError) {
    TempDir dir;
    auto missing = (dir.path() / "nope.toml").string();
    auto message = usage_error([&] { load_config(missing); });
    EXPECT_TRUE(contains(message, missing)) << message;
    EXPECT_TRUE(contains(message, "does not exist")) << message;
}

TEST(LoadConfig, ADirectoryIsNotAConfigFile) {
    TempDir dir;
    auto message = usage_error([&] { load_config(dir.path().string()); });
    EXPECT_TRUE(contains(message, dir.path().string())) << message;
    EXPECT_TRUE(contains(message, "directory")) << message;
}

TEST(LoadConfig, APipeIsReadLikeAFile) {  // --config <(generate-config)
    TempDir dir;
    auto fifo = dir.path() / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    std::thread writer([&] { std::ofstream(fifo) << "[work]\nconcurrency = 5\n"; });
    auto config = load_config(fifo.string());
    writer.join();
    EXPECT_EQ(items(config, "work", "concurrency"), std::vector<std::string>{"5"});
}

TEST(LoadConfig, AnUnreadableFileIsAnError) {
    if (::geteuid() == 0) GTEST_SKIP() << "root reads every file";
    TempDir dir;
    auto file = dir.write("secret.toml", "[work]\n");
    ::chmod(file.c_str(), 0);
    auto message = usage_error([&] { load_config(file.string()); });
    EXPECT_TRUE(contains(message, file.string())) << message;
    EXPECT_TRUE(contains(message, "Permission denied")) << message;
}

TEST(LoadConfig, ValuesThatAreNotStringsNumbersBooleansOrArraysNameFileAndLine) {
    TempDir dir;
    for (const char* text :
         {"[enqueue]\n\nat = 2026-01-01T00:00:00Z\n", "[enqueue]\n\nat = { when = \"now\" }\n",
          "[work.hooks]\n\n\n", "[enqueue]\n\nat = [[1], [2]]\n"}) {
        auto file = dir.write("types.toml", text);
        auto message = usage_error([&] { load_config(file.string()); });
        EXPECT_TRUE(contains(message, file.string() + ":")) << message;
    }
}

// --- apply_config ---------------------------------------------------------------------------

TEST(ApplyConfig, FillsOptionsTheCommandLineLeftUnset) {
    TempDir dir;
    WorkApp tool;
    tool.parse("");
    auto warnings = apply(tool, dir, "[work]\nconcurrency = 4\ntimeout = \"20s\"\nratio = 0.5\n");
    EXPECT_TRUE(warnings.empty());
    EXPECT_EQ(tool.concurrency, 4);
    EXPECT_EQ(tool.timeout, "20s");
    EXPECT_DOUBLE_EQ(tool.ratio, 0.5);
}

TEST(ApplyConfig, TheCommandLineWins) {
    TempDir dir;
    WorkApp tool;
    tool.parse("-c 8 --tag x");
    apply(tool, dir, "[work]\nconcurrency = 4\ntimeout = \"20s\"\ntag = [\"a\", \"b\"]\n");
    EXPECT_EQ(tool.concurrency, 8);
    EXPECT_EQ(tool.timeout, "20s");
    EXPECT_EQ(tool.tags, std::vector<std::string>{"x"});
}

TEST(ApplyConfig, FlagsTakeTrueOrFalse) {
    TempDir dir;
    WorkApp tool;
    tool.parse("");
    apply(tool, dir, "[work]\nburst = true\narg = false\n");
    EXPECT_TRUE(tool.burst);
    EXPECT_FALSE(tool.arg);

    WorkApp strings;  // TOML strings "true"/"false" read the same
    strings.parse("");
    apply(strings, dir, "[work]\nburst = \"true\"\narg = \"false\"\n");
    EXPECT_TRUE(strings.burst);
    EXPECT_FALSE(strings.arg);

    WorkApp given;  // a flag given on the command line stays set
    given.parse("--arg");
    apply(given, dir, "[work]\narg = false\n");
    EXPECT_TRUE(given.arg);
}

TEST(ApplyConfig, AFlagWithAnotherValueNamesFileLineAndKey) {
    TempDir dir;
    for (const char* value : {"\"yes\"", "1", "[true, false]"}) {
        WorkApp tool;
        tool.parse("");
        std::string message;
        message = usage_error([&] { apply(tool, dir, std::string("[work]\n\nburst = ") + value); });
        EXPECT_TRUE(contains(message, "config.toml:3")) << message;
        EXPECT_TRUE(contains(message, "burst")) << message;
        EXPECT_TRUE(contains(message, "true or false")) << message;
        EXPECT_FALSE(tool.burst);
    }
}

TEST(ApplyConfig, ArraysFillRepeatableOptions) {
    TempDir dir;
    WorkApp tool;
    tool.parse("");
    apply(tool, dir, "[work]\ntag = [\"a\", \"b\", \"c\"]\n");
    EXPECT_EQ(tool.tags, (std::vector<std::string>{"a", "b", "c"}));

    WorkApp single;
    single.parse("");
    apply(single, dir, "[work]\ntag = \"solo\"\n");
    EXPECT_EQ(single.tags, std::vector<std::string>{"solo"});
}

TEST(ApplyConfig, UnknownKeysAreWarningsNamingKeyTableAndLine) {
    TempDir dir;
    WorkApp tool;
    tool.parse("");
    auto warnings = apply(tool, dir, "[work]\nconcurrency = 2\ncolour = \"blue\"\n");
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_TRUE(contains(warnings[0], "unknown key 'colour'")) << warnings[0];
    EXPECT_TRUE(contains(warnings[0], "[work]")) << warnings[0];
    EXPECT_TRUE(contains(warnings[0], "config.toml:3")) << warnings[0];
    EXPECT_EQ(tool.concurrency, 2);  // the rest still applies
}

TEST(ApplyConfig, HelpAndVersionAreNotKeys) {
    TempDir dir;
    WorkApp tool;
    tool.parse("");
    auto warnings = apply(tool, dir, "[work]\nhelp = true\nversion = true\n");
    ASSERT_EQ(warnings.size(), 2u);
    EXPECT_TRUE(contains(warnings[0], "'help'")) << warnings[0];
    EXPECT_TRUE(contains(warnings[1], "'version'")) << warnings[1];
}

TEST(ApplyConfig, UnknownTopLevelRedisKeysAndTablesAreWarnings) {
    TempDir dir;
    WorkApp tool;
    tool.parse("");
    auto warnings = apply(tool, dir,
                          "namespace = \"ok\"\nnamspace = \"typo\"\n"
                          "[redis]\nurl = \"redis://h\"\npassword_file = \"/p\"\nuser = \"x\"\n"
                          "[wrok]\nconcurrency = 3\n"
                          "[enqueue]\nwhatever = 1\n");
    std::string all;
    for (const auto& warning : warnings)
        all += warning + "\n";
    EXPECT_EQ(warnings.size(), 3u) << all;
    EXPECT_TRUE(contains(all, "unknown key 'namspace'")) << all;
    EXPECT_TRUE(contains(all, "unknown key 'user' in [redis]")) << all;
    EXPECT_TRUE(contains(all, "unknown table [wrok]")) << all;
    EXPECT_FALSE(contains(all, "whatever")) << "another tool's table is that tool's to check";
    EXPECT_EQ(tool.concurrency, 1);
}

TEST(ApplyConfig, AValueTheOptionRefusesNamesFileLineAndKey) {
    TempDir dir;
    for (const char* line : {"concurrency = \"many\"", "concurrency = 1.5", "percent = 101",
                             "concurrency = [1, 2]", "ratio = \"half\""}) {
        WorkApp tool;
        tool.parse("");
        auto message =
            usage_error([&] { apply(tool, dir, std::string("[work]\n# comment\n") + line); });
        EXPECT_TRUE(contains(message, "config.toml:3")) << line << ": " << message;
        EXPECT_TRUE(contains(message, "[work]")) << message;
        std::string key(line, std::string_view(line).find(' '));
        EXPECT_TRUE(contains(message, key)) << message;
    }
}

TEST(ApplyConfig, ConnectionKeysAreLeftToTheConnectionSettings) {
    TempDir dir;
    WorkApp tool;
    tool.parse("");
    auto warnings = apply(tool, dir,
                          "[work]\nredis = \"redis://elsewhere\"\nnamespace = \"other\"\n"
                          "password-file = \"/pw\"\nconfig = \"/c.toml\"\n");
    EXPECT_TRUE(warnings.empty());
    EXPECT_EQ(tool.common.redis_url, "");
    EXPECT_EQ(tool.common.namespace_name, "");
    EXPECT_EQ(tool.common.password_file, "");
    EXPECT_EQ(tool.common.config_file, "");
}

TEST(ApplyConfig, CommonOutputOptionsComeFromTheToolTable) {
    TempDir dir;
    WorkApp tool;
    tool.parse("");
    apply(tool, dir, "[work]\nquiet = true\nlog-level = \"debug\"\nlog-format = \"json\"\n");
    EXPECT_TRUE(tool.common.quiet);
    EXPECT_EQ(tool.common.log_level, "debug");
    EXPECT_EQ(tool.common.log_format, "json");
}

TEST(ApplyConfig, OnlyTheToolsOwnTableApplies) {
    TempDir dir;
    WorkApp tool;
    tool.parse("");
    apply(tool, dir, "[enqueue]\ntimeout = \"1s\"\n[status]\nconcurrency = 9\n");
    EXPECT_EQ(tool.timeout, "5m");
    EXPECT_EQ(tool.concurrency, 1);
}

// --- options.cpp ----------------------------------------------------------------------------

TEST(Options, ExplicitConfigFileFlagThenEnvironment) {
    CommonOptions options;
    EnvVar env("WORKQ_CONFIG", std::nullopt);
    EXPECT_EQ(explicit_config_file(options), std::nullopt);
    env.set("");
    EXPECT_EQ(explicit_config_file(options), std::nullopt);
    env.set("/from/env.toml");
    EXPECT_EQ(explicit_config_file(options), "/from/env.toml");
    options.config_file = "/from/flag.toml";
    EXPECT_EQ(explicit_config_file(options), "/from/flag.toml");
}

TEST(Options, ParseErrorsAreUsageErrorsNamingTheFlag) {
    WorkApp tool;
    std::vector<std::string> args{"workq-test", "--concurrency", "lots"};
    std::vector<char*> argv;
    for (auto& arg : args)
        argv.push_back(arg.data());
    auto message = usage_error(
        [&] { parse_command_line(tool.app, static_cast<int>(argv.size()), argv.data()); });
    EXPECT_TRUE(contains(message, "--concurrency")) << message;
    EXPECT_TRUE(contains(message, "lots")) << message;
    EXPECT_TRUE(contains(message, "--help")) << message;

    WorkApp unknown;
    args = {"workq-test", "--frobnicate"};
    argv.clear();
    for (auto& arg : args)
        argv.push_back(arg.data());
    message = usage_error(
        [&] { parse_command_line(unknown.app, static_cast<int>(argv.size()), argv.data()); });
    EXPECT_TRUE(contains(message, "--frobnicate")) << message;
}

TEST(Options, HelpAndVersionAreRequestsNotErrors) {
    for (const char* flag : {"--help", "--version"}) {
        WorkApp tool;
        std::vector<std::string> args{"workq-test", flag};
        std::vector<char*> argv;
        for (auto& arg : args)
            argv.push_back(arg.data());
        try {
            parse_command_line(tool.app, static_cast<int>(argv.size()), argv.data());
            ADD_FAILURE() << flag << " parsed as a plain run";
        } catch (const HelpRequested& help) {
            if (std::string(flag) == "--help") {
                EXPECT_TRUE(contains(help.text, "--concurrency")) << help.text;
                EXPECT_TRUE(contains(help.text, "--password-file")) << help.text;
            } else {
                EXPECT_EQ(help.text, std::string("workq ") + WORKQ_VERSION + "\n");
            }
        }
    }
}

TEST(Options, FinishOptionsAppliesTheFileAndWarnsAboutUnknownKeys) {
    TempDir dir;
    auto file = dir.write("w.toml", "[work]\nconcurrency = 6\nspeed = \"fast\"\n");
    EnvVar env("WORKQ_CONFIG", file.string());
    WorkApp tool;
    tool.parse("");
    CaptureStderr capture;
    auto config = finish_options(tool.app, tool.common, "work");
    auto err = capture.text();
    log::configure(log::program(), log::Level::info, log::Format::human);
    EXPECT_EQ(tool.concurrency, 6);
    EXPECT_EQ(config.files, std::vector<fs::path>{file});
    EXPECT_TRUE(contains(err, "unknown key 'speed' in [work]")) << err;
    EXPECT_TRUE(contains(err, "warning")) << err;
}

TEST(Options, FinishOptionsHonoursQuietFromTheCommandLineForConfigWarnings) {
    TempDir dir;
    auto file = dir.write("w.toml", "[work]\nspeed = \"fast\"\n");
    EnvVar env("WORKQ_CONFIG", file.string());
    WorkApp tool;
    tool.parse("-q");
    CaptureStderr capture;
    finish_options(tool.app, tool.common, "work");
    auto err = capture.text();
    log::configure(log::program(), log::Level::info, log::Format::human);
    EXPECT_EQ(err, "");
}

TEST(Options, FinishOptionsRefusesUnknownLogLevelsAndFormats) {
    TempDir dir;
    EnvVar env("WORKQ_CONFIG", dir.write("empty.toml", "").string());
    {
        WorkApp tool;
        tool.parse("--log-level loud");
        auto message = usage_error([&] { finish_options(tool.app, tool.common, "work"); });
        EXPECT_TRUE(contains(message, "--log-level")) << message;
        EXPECT_TRUE(contains(message, "loud")) << message;
    }
    {
        WorkApp tool;
        tool.parse("--log-format xml");
        auto message = usage_error([&] { finish_options(tool.app, tool.common, "work"); });
        EXPECT_TRUE(contains(message, "--log-format")) << message;
        EXPECT_TRUE(contains(message, "xml")) << message;
    }
    log::configure(log::program(), log::Level::info, log::Format::human);
}

// --- apply_environment (WORKQ_<TOOL>_<KEY>) ------------------------------------------------------

TEST(ConfigEnvironment, TheVariableIsTheToolAndTheKeyUpperCaseWithUnderscores) {
    EXPECT_EQ(environment_variable("work", "shutdown-timeout"), "WORKQ_WORK_SHUTDOWN_TIMEOUT");
    EXPECT_EQ(environment_variable("enqueue", "max-attempts"), "WORKQ_ENQUEUE_MAX_ATTEMPTS");
}

TEST(ConfigEnvironment, FillsWhatTheCommandLineLeftUnsetAndRanksAboveTheFile) {
    TempDir dir;
    EnvVar concurrency("WORKQ_WORK_CONCURRENCY", "3");
    EnvVar timeout("WORKQ_WORK_TIMEOUT", "1m");
    EnvVar burst("WORKQ_WORK_BURST", "1");
    EnvVar arg("WORKQ_WORK_ARG", "false");
    EnvVar empty("WORKQ_WORK_RATIO", "");
    WorkApp tool;
    tool.parse("--timeout 2m");
    std::vector<std::string> warnings;
    auto applied = apply_environment(
        tool.app, "work", [&](const std::string& warning) { warnings.push_back(warning); });
    EXPECT_EQ(tool.concurrency, 3);
    EXPECT_EQ(tool.timeout, "2m");  // the command line wins
    EXPECT_TRUE(tool.burst);
    EXPECT_FALSE(tool.arg);
    EXPECT_EQ(tool.ratio, 0);  // empty: unset
    EXPECT_EQ(applied,
              (std::map<std::string, std::string>{{"burst", "WORKQ_WORK_BURST"},
                                                  {"concurrency", "WORKQ_WORK_CONCURRENCY"}}));
    EXPECT_TRUE(warnings.empty());
    // The file fills only what is still unset.
    EXPECT_TRUE(apply(tool, dir, "[work]\nconcurrency = 8\nratio = 0.5\n").empty());
    EXPECT_EQ(tool.concurrency, 3);
    EXPECT_EQ(tool.ratio, 0.5);
}

TEST(ConfigEnvironment, ABadValueNamesTheVariableAnUnknownOneIsAWarning) {
    {
        EnvVar percent("WORKQ_WORK_PERCENT", "150");
        WorkApp tool;
        tool.parse("");
        try {
            apply_environment(tool.app, "work", [](const std::string&) {});
            FAIL() << "accepted 150";
        } catch (const UsageError& error) {
            EXPECT_NE(std::string(error.what()).find("WORKQ_WORK_PERCENT"), std::string::npos)
                << error.what();
        }
    }
    {
        EnvVar burst("WORKQ_WORK_BURST", "yes please");
        WorkApp tool;
        tool.parse("");
        EXPECT_THROW(apply_environment(tool.app, "work", [](const std::string&) {}), UsageError);
    }
    EnvVar typo("WORKQ_WORK_CONCURENCY", "2");
    EnvVar connection("WORKQ_WORK_NAMESPACE", "other");
    WorkApp tool;
    tool.parse("");
    std::vector<std::string> warnings;
    apply_environment(tool.app, "work",
                      [&](const std::string& warning) { warnings.push_back(warning); });
    ASSERT_EQ(warnings.size(), 2u);
    std::sort(warnings.begin(), warnings.end());
    EXPECT_NE(warnings[0].find("WORKQ_WORK_NAMESPACE is not read"), std::string::npos);
    EXPECT_NE(warnings[1].find("unknown variable WORKQ_WORK_CONCURENCY"), std::string::npos);
    EXPECT_TRUE(tool.common.namespace_name.empty());
}
