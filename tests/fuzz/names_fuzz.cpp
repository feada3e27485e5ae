// Queue names, job ids and namespaces (lib/util/names) and the renderings for people
// (printable, one_line): a name is accepted exactly when the contract's rule says so, refusals
// are UsageError with a message free of control bytes, and the renderings never let a control
// byte (ESC, BEL, CR, NUL, ...) through to a terminal.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "util/errors.hpp"
#include "util/names.hpp"
#include "util/text.hpp"

namespace {

// The contract (§2): 1..max characters of A-Z a-z 0-9 . _ -, the first a letter or digit.
bool contract_allows(std::string_view name, std::size_t max) {
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (name.empty() || name.size() > max || !alnum(name.front())) return false;
    for (char c : name)
        if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
    return true;
}

bool has_control_byte(std::string_view text) {
    for (unsigned char c : text)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

// C1 controls (U+0080..U+009F) in UTF-8: some terminals obey U+009B as CSI, like ESC [.
bool has_c1_control(std::string_view text) {
    for (std::size_t i = 0; i + 1 < text.size(); ++i)
        if (static_cast<unsigned char>(text[i]) == 0xc2 &&
            static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
            static_cast<unsigned char>(text[i + 1]) <= 0x9f)
            return true;
    return false;
}

template <typename Check>
void check_refusal(Check check, std::string_view name, bool allowed) {
    try {
        check(name);
        FUZZ_CHECK(allowed);
    } catch (const workq::UsageError& error) {
        FUZZ_CHECK(!allowed);
        FUZZ_CHECK(!has_control_byte(error.what()));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    FUZZ_CHECK(!workq::queue_name_problem(text) == contract_allows(text, 128));
    FUZZ_CHECK(!workq::job_id_problem(text) == contract_allows(text, 200));
    FUZZ_CHECK(!workq::namespace_problem(text) == contract_allows(text, 64));
    check_refusal(workq::check_queue_name, text, contract_allows(text, 128));
    check_refusal(workq::check_job_id, text, contract_allows(text, 200));
    check_refusal(workq::check_namespace, text, contract_allows(text, 64));

    auto shown = workq::printable(text, 80);
    for (unsigned char c : shown)
        FUZZ_CHECK(c >= 0x20 && c < 0x7f);
    FUZZ_CHECK(shown.size() <= 80 + 4 + 3);  // one escape may straddle the cut, then "..."

    auto cell = workq::one_line(text, 60);
    FUZZ_CHECK(!has_control_byte(cell));
    FUZZ_CHECK(!has_c1_control(cell));
    FUZZ_CHECK(workq::is_valid_utf8(cell));

    auto encoded = workq::base64_encode(text);
    auto decoded = workq::base64_decode(encoded);
    FUZZ_CHECK(decoded && *decoded == text);
    if (auto raw = workq::base64_decode(text))
        FUZZ_CHECK(workq::base64_decode(workq::base64_encode(*raw)) == raw);
    return 0;
}
