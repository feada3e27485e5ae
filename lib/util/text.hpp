// Bytes and text: UTF-8 validity, base64, and safe one-line renderings for people.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace workq {

bool is_valid_utf8(std::string_view bytes);

std::string base64_encode(std::string_view bytes);
// nullopt when the text is not base64 (padding optional, whitespace refused).
std::optional<std::string> base64_decode(std::string_view text);

// One line for a table cell: the first line of `text`, control characters escaped, valid
// UTF-8 kept as it is (C1 controls escaped as \u0080..\u009f), invalid bytes as \xNN, cut at
// `max_chars` characters with "…".
std::string one_line(std::string_view text, std::size_t max_chars);

// At most the last `max_bytes` bytes of `text`, starting on a UTF-8 character (continuation
// bytes at the cut are dropped): how long texts are kept by their end (a job's error).
std::string_view tail_utf8(std::string_view text, std::size_t max_bytes);

// The number of single-byte insertions, deletions and substitutions that turn `a` into `b`
// (Levenshtein): how far a mistyped word is from a known one, for "did you mean ...?".
std::size_t edit_distance(std::string_view a, std::string_view b);

// A Prometheus label value for the text exposition format: backslash, double quote and line
// feed escaped (\\, \", \n), every other byte as it is (the format is UTF-8).
std::string prometheus_label(std::string_view value);

}  // namespace workq
