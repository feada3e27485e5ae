#include "util/names.hpp"

#include <fmt/format.h>

#include "util/errors.hpp"

namespace workq {
namespace {

constexpr std::size_t max_queue_name = 128;
constexpr std::size_t max_job_id = 200;
constexpr std::size_t max_namespace = 64;

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_name_char(char c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

std::optional<std::string> name_problem(std::string_view name, std::size_t max_length) {
    if (name.empty()) return "is empty";
    if (name.size() > max_length) return fmt::format("is longer than {} characters", max_length);
    if (!is_alnum(name.front())) return "must start with a letter or digit";
    for (char c : name)
        if (!is_name_char(c)) return "may hold only letters, digits, '.', '_' and '-'";
    return std::nullopt;
}

void check(std::string_view kind, std::string_view name, std::optional<std::string> problem) {
    if (problem)
        throw UsageError(fmt::format("invalid {} '{}': {}", kind, printable(name), *problem));
}

}  // namespace

std::optional<std::string> queue_name_problem(std::string_view name) {
    return name_problem(name, max_queue_name);
}
std::optional<std::string> job_id_problem(std::string_view id) {
    return name_problem(id, max_job_id);
}
std::optional<std::string> namespace_problem(std::string_view ns) {
    return name_problem(ns, max_namespace);
}

void check_queue_name(std::string_view name) {
    check("queue name", name, queue_name_problem(name));
}
void check_job_id(std::string_view id) {
    check("job id", id, job_id_problem(id));
}
void check_namespace(std::string_view ns) {
    check("namespace", ns, namespace_problem(ns));
}

std::string printable(std::string_view text, std::size_t max_length) {
    std::string out;
    for (unsigned char c : text) {
        if (out.size() >= max_length) {
            out += "...";
            break;
        }
        switch (c) {
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\\':
                out += "\\\\";
                break;
            default:
                if (c < 0x20 || c >= 0x7f)
                    out += fmt::format("\\x{:02x}", c);
                else
                    out += static_cast<char>(c);
        }
    }
    return out;
}

}  // namespace workq
