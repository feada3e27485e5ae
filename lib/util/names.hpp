// Queue names, job ids and namespaces: the characters they may hold, checked before any
// command is sent so that a bad name never reaches the server.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace workq {

// Why a name was refused, for messages: "is empty", "is longer than 128 characters", ...
// Empty when the name is valid.
std::optional<std::string> queue_name_problem(std::string_view name);
std::optional<std::string> job_id_problem(std::string_view id);
std::optional<std::string> namespace_problem(std::string_view ns);

// Throw UsageError naming what was wrong: "invalid queue name 'a b': may hold only ...".
void check_queue_name(std::string_view name);
void check_job_id(std::string_view id);
void check_namespace(std::string_view ns);

// Shows text safely in a message: control characters and bytes that are not printable ASCII
// become escapes (\n, \x1b), and very long text is cut with "...".
std::string printable(std::string_view text, std::size_t max_length = 80);

}  // namespace workq
