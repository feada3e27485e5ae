#include "cli/input.hpp"

#include <iostream>

namespace workq::cli {

std::vector<std::string> ids_or_stdin(std::vector<std::string> ids) {
    if (ids.size() != 1 || ids[0] != "-") return ids;
    ids.clear();
    for (std::string line; std::getline(std::cin, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) ids.push_back(line);
    }
    return ids;
}

}  // namespace workq::cli
