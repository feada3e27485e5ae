#include "queue/keys.hpp"

#include <fmt/format.h>

namespace workq::queue {

QueueKeys::QueueKeys(std::string_view namespace_name, std::string_view queue)
    : queue_(queue), prefix_(fmt::format("{{{}:{}}}:", namespace_name, queue)) {}

NamespaceKeys::NamespaceKeys(std::string_view namespace_name)
    : name_(namespace_name), prefix_(fmt::format("{{{}}}:", namespace_name)) {}

}  // namespace workq::queue
