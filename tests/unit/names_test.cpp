#include "util/names.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "util/errors.hpp"

using namespace workq;

namespace {

using Problem = std::function<std::optional<std::string>(std::string_view)>;

struct Kind {
    const char* name;
    Problem problem;
    std::size_t max_length;
};

const Kind kinds[] = {
    {"queue name", queue_name_problem, 128},
    {"job id", job_id_problem, 200},
    {"namespace", namespace_problem, 64},
};

// The message a check_* function throws for `text`, or "" when it does not throw.
std::string usage_error(void (*check)(std::string_view), std::string_view text) {
    try {
        check(text);
    } catch (const UsageError& error) {
        return error.what();
    }
    return "";
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST(Names, AcceptsEveryAllowedCharacter) {
    for (const auto& kind : kinds) {
        for (const char* good :
             {"a", "Z", "0", "9", "mail", "Mail.Out_2-b", "0-._", "a..b", "a--", "A_Z.a-z_0.9"})
            EXPECT_EQ(kind.problem(good), std::nullopt) << kind.name << ": " << good;
    }
}

TEST(Names, AcceptsExactlyTheMaximumLength) {
    for (const auto& kind : kinds) {
        EXPECT_EQ(kind.problem(std::string(kind.max_length, 'a')), std::nullopt) << kind.name;
        auto problem = kind.problem(std::string(kind.max_length + 1, 'a'));
        ASSERT_TRUE(problem.has_value()) << kind.name;
        EXPECT_TRUE(contains(*problem, std::to_string(kind.max_length))) << *problem;
    }
}

TEST(Names, RefusesEmpty) {
    for (const auto& kind : kinds) {
        auto problem = kind.problem("");
        ASSERT_TRUE(problem.has_value()) << kind.name;
        EXPECT_EQ(*problem, "is empty");
    }
}

TEST(Names, RefusesAFirstCharacterThatIsNotALetterOrDigit) {
    for (const auto& kind : kinds) {
        for (const char* bad : {".hidden", "_x", "-rf", "..", "-", "{mail}", " a", "*"}) {
            auto problem = kind.problem(bad);
            ASSERT_TRUE(problem.has_value()) << kind.name << ": " << bad;
            EXPECT_TRUE(contains(*problem, "start with a letter or digit")) << *problem;
        }
    }
}

TEST(Names, RefusesCharactersOutsideTheAllowedSet) {
    const std::string bad_names[] = {"mail}",    "mail{x}",     "a*",
                                     "a:b",      "a b",         "a ",
                                     "a\t",      "a\nb",        std::string("a\0b", 3),
                                     "a\x1b[0m", "a/b",         "a\\b",
                                     "a@b",      "a,b",         "a;b",
                                     "a$b",      "a'b",         "a\"b",
                                     "a\x7f",    "caf\xc3\xa9", "a\xff",
                                     "a?",       "a[0]",        "a+b",
                                     "a=b",      "a%20b",       "a~"};
    for (const auto& kind : kinds) {
        for (const auto& bad : bad_names) {
            auto problem = kind.problem(bad);
            ASSERT_TRUE(problem.has_value()) << kind.name << ": " << printable(bad);
            EXPECT_TRUE(contains(*problem, "may hold only letters, digits")) << *problem;
        }
    }
}

TEST(Names, RefusesTenThousandCharacters) {
    std::string huge(10'000, 'q');
    for (const auto& kind : kinds) {
        auto problem = kind.problem(huge);
        ASSERT_TRUE(problem.has_value()) << kind.name;
        EXPECT_TRUE(contains(*problem, "longer than")) << *problem;
    }
}

TEST(Names, CheckThrowsUsageErrorNamingKindTextAndProblem) {
    auto message = usage_error(check_queue_name, "a b");
    EXPECT_TRUE(contains(message, "queue name")) << message;
    EXPECT_TRUE(contains(message, "'a b'")) << message;
    EXPECT_TRUE(contains(message, "may hold only")) << message;

    message = usage_error(check_job_id, "");
    EXPECT_TRUE(contains(message, "job id")) << message;
    EXPECT_TRUE(contains(message, "is empty")) << message;

    message = usage_error(check_namespace, "{ns}");
    EXPECT_TRUE(contains(message, "namespace")) << message;
    EXPECT_TRUE(contains(message, "{ns}")) << message;

    EXPECT_EQ(usage_error(check_queue_name, "mail"), "");
    EXPECT_EQ(usage_error(check_job_id, std::string(200, '7')), "");
    EXPECT_EQ(usage_error(check_namespace, "workq"), "");
}

TEST(Names, CheckShowsControlCharactersEscapedAndCutsHugeNames) {
    auto message = usage_error(check_queue_name, "evil\x1b[2Jname\n");
    EXPECT_FALSE(contains(message, "\x1b")) << printable(message);
    EXPECT_FALSE(contains(message, "\n")) << printable(message);
    EXPECT_TRUE(contains(message, "evil\\x1b[2Jname\\n")) << message;

    message = usage_error(check_job_id, std::string(10'000, 'x'));
    EXPECT_LT(message.size(), 400u) << "the message repeats the whole id";
    EXPECT_TRUE(contains(message, "...")) << message;
    EXPECT_TRUE(contains(message, "longer than 200")) << message;
}

TEST(Printable, KeepsPlainTextAsIs) {
    EXPECT_EQ(printable("mail.out_2 -x"), "mail.out_2 -x");
    EXPECT_EQ(printable(""), "");
}

TEST(Printable, EscapesControlCharactersAndNonAscii) {
    EXPECT_EQ(printable("a\nb"), "a\\nb");
    EXPECT_EQ(printable("a\rb\tc"), "a\\rb\\tc");
    EXPECT_EQ(printable("back\\slash"), "back\\\\slash");
    EXPECT_EQ(printable("\x1b[31m"), "\\x1b[31m");
    EXPECT_EQ(printable(std::string("a\0b", 3)), "a\\x00b");
    EXPECT_EQ(printable("\x7f"), "\\x7f");
    EXPECT_EQ(printable("caf\xc3\xa9"), "caf\\xc3\\xa9");
}

TEST(Printable, CutsLongTextWithAnEllipsis) {
    EXPECT_EQ(printable(std::string(80, 'a')), std::string(80, 'a'));
    EXPECT_EQ(printable(std::string(81, 'a')), std::string(80, 'a') + "...");
    EXPECT_EQ(printable("abcdef", 3), "abc...");
    EXPECT_EQ(printable("abc", 3), "abc");
    auto cut = printable(std::string(10'000, '\n'));
    EXPECT_LE(cut.size(), 80u + 2 + 3);
    EXPECT_EQ(cut.substr(cut.size() - 3), "...");
}
