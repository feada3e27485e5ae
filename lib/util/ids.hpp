// Job ids that workq makes: 18 characters of lowercase Crockford base32, a millisecond timestamp
// then 40 random bits, e.g. "01jd9x3k7m2q5v8wza". They sort by creation time, are safe as file
// names and shell words, and are unique in practice (the enqueue script also refuses a
// collision, and the caller retries).
#pragma once

#include <string>

namespace workq {

std::string new_job_id();

// A fresh random token of `length` base32 characters (for worker ids and lease tokens).
std::string random_token(std::size_t length);

}  // namespace workq
