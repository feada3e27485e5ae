// The three faces of a snapshot, with the same field names everywhere (README, "workq-status"):
// an aligned view for people, one JSON document for scripts, Prometheus exposition for monitors.
#pragma once

#include <cstddef>
#include <string>

#include "snapshot.hpp"

namespace workq::status {

// A screen to fit (--watch at a terminal): 0 is no limit. `footer_lines` of the height are the
// caller's, below the view.
struct Screen {
    std::size_t width = 0, height = 0, footer_lines = 0;
};

// The view for people. Fitted to a screen: tables drop their least useful columns, then cut
// lines, to fit the width; rows that do not fit the height are counted in a line saying how
// many queues and workers are not shown.
std::string render_human(const Snapshot& snapshot, const Screen& screen = {});
std::string render_json(const Snapshot& snapshot);
std::string render_prometheus(const Snapshot& snapshot);

}  // namespace workq::status
