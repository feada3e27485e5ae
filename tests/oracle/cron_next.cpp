// cron_next: the cron library (lib/util/cron) on the command line, for tests/oracle/cron_oracle.py.
// Reads cases from stdin, one per line: EXPR <TAB> ZONE <TAB> START <TAB> COUNT (START in epoch
// seconds), and writes one line per case: the next COUNT ticks after START in epoch seconds,
// separated by spaces (fewer when the expression stops firing), or "error: MESSAGE".
#include <iostream>
#include <string>
#include <vector>

#include "util/cron.hpp"
#include "util/errors.hpp"

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> parts;
    std::string::size_type start = 0;
    while (true) {
        auto tab = line.find('\t', start);
        parts.push_back(line.substr(start, tab == std::string::npos ? tab : tab - start));
        if (tab == std::string::npos) return parts;
        start = tab + 1;
    }
}

std::string answer(const std::vector<std::string>& parts) {
    if (parts.size() != 4) return "error: expected EXPR, ZONE, START and COUNT";
    try {
        auto expression = workq::parse_cron(parts[0]);
        auto zone = workq::TimeZone::named(parts[1]);
        workq::SysSeconds t{std::chrono::seconds{std::stoll(parts[2])}};
        int count = std::stoi(parts[3]);
        std::string out;
        for (int i = 0; i < count; ++i) {
            auto next = workq::next_tick(expression, zone, t);
            if (!next) break;
            if (!out.empty()) out += ' ';
            out += std::to_string(next->time_since_epoch().count());
            t = *next;
        }
        return out;
    } catch (const std::exception& error) {
        return std::string("error: ") + error.what();
    }
}

}  // namespace

int main() {
    std::ios::sync_with_stdio(false);
    std::string line;
    while (std::getline(std::cin, line))
        std::cout << answer(split_tabs(line)) << '\n';
    return 0;
}
