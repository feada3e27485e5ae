// For a tool whose issue has not landed yet: --help and --version work, anything else says
// the tool is not built yet and exits 1 (never 0, so no script mistakes it for success).
#pragma once

#include <string>

namespace workq::cli {

int run_unbuilt_tool(const std::string& tool, const std::string& synopsis, int argc, char** argv);

}  // namespace workq::cli
