#include "queue/scripts.hpp"

#include <stdexcept>
#include <string>

namespace workq::queue {

const ScriptSource& script(std::string_view name) {
    for (const auto& candidate : embedded_scripts())
        if (candidate.name == name) return candidate;
    throw std::logic_error("no embedded script named " + std::string(name));
}

}  // namespace workq::queue
