#include "cli/stub.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/options.hpp"
#include "util/errors.hpp"

namespace workq::cli {

int run_unbuilt_tool(const std::string& tool, const std::string& synopsis, int argc, char** argv) {
    CLI::App app{synopsis, "workq-" + tool};
    CommonOptions common;
    add_common_options(app, common);
    app.allow_extras();
    describe_tool(app, "This tool is not built yet: see the README's roadmap.");
    parse_command_line(app, argc, argv);
    throw Error(fmt::format("workq-{} is not built yet (see the README's roadmap)", tool));
}

}  // namespace workq::cli
