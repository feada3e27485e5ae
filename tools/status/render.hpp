// The three faces of a snapshot, with the same field names everywhere (README, "workq-status"):
// an aligned view for people, one JSON document for scripts, Prometheus exposition for monitors.
#pragma once

#include <string>

#include "snapshot.hpp"

namespace workq::status {

std::string render_human(const Snapshot& snapshot);
std::string render_json(const Snapshot& snapshot);
std::string render_prometheus(const Snapshot& snapshot);

}  // namespace workq::status
