#include "util/ids.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "util/names.hpp"

using namespace workq;

namespace {

constexpr std::string_view alphabet = "0123456789abcdefghjkmnpqrstvwxyz";

// The creation time a job id carries in its first 10 characters, in epoch milliseconds.
long long id_millis(const std::string& id) {
    long long value = 0;
    for (char c : id.substr(0, 10))
        value = value * 32 + static_cast<long long>(alphabet.find(c));
    return value;
}

long long now_millis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

TEST(Ids, JobIdsAreValidJobIdsOf18Base32Characters) {
    for (int i = 0; i < 1000; ++i) {
        auto id = new_job_id();
        ASSERT_EQ(id.size(), 18u) << id;
        EXPECT_EQ(job_id_problem(id), std::nullopt) << id;
        EXPECT_EQ(id.find_first_not_of(alphabet), std::string::npos) << id;
    }
}

TEST(Ids, JobIdsCarryTheirCreationTime) {
    auto before = now_millis();
    auto id = new_job_id();
    auto after = now_millis();
    EXPECT_GE(id_millis(id), before) << id;
    EXPECT_LE(id_millis(id), after) << id;
}

TEST(Ids, JobIdsSortByCreationTimeAcrossMilliseconds) {
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) {
        ids.push_back(new_job_id());
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (std::size_t i = 1; i < ids.size(); ++i) {
        EXPECT_LT(id_millis(ids[i - 1]), id_millis(ids[i]));
        EXPECT_LT(ids[i - 1], ids[i]) << "ids made later must sort later";
    }
}

TEST(Ids, JobIdsAreUniqueOver100k) {
    std::vector<std::string> ids;
    ids.reserve(100'000);
    for (int i = 0; i < 100'000; ++i)
        ids.push_back(new_job_id());
    std::unordered_set<std::string> unique(ids.begin(), ids.end());
    EXPECT_EQ(unique.size(), ids.size());
    // Made one after another, their time prefixes never go backwards.
    for (std::size_t i = 1; i < ids.size(); ++i)
        ASSERT_LE(ids[i - 1].substr(0, 10), ids[i].substr(0, 10)) << i;
}

TEST(Ids, RandomTokensHaveTheLengthAskedForAndVary) {
    EXPECT_EQ(random_token(0), "");
    for (std::size_t length : {1u, 5u, 12u, 13u, 26u, 100u}) {
        auto token = random_token(length);
        EXPECT_EQ(token.size(), length);
        EXPECT_EQ(token.find_first_not_of(alphabet), std::string::npos) << token;
    }
    std::unordered_set<std::string> tokens;
    for (int i = 0; i < 10'000; ++i)
        tokens.insert(random_token(16));
    EXPECT_EQ(tokens.size(), 10'000u);
    // Every character of the alphabet turns up: no bits are stuck.
    std::string all;
    for (int i = 0; i < 200; ++i)
        all += random_token(26);
    for (char c : alphabet)
        EXPECT_NE(all.find(c), std::string::npos) << c;
}
