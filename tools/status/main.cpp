// workq-status [QUEUE...]: queue depth, latency and worker health
#include "cli/runner.hpp"
#include "cli/stub.hpp"

namespace {
int unbuilt(int argc, char** argv) {
    return workq::cli::run_unbuilt_tool(
        "status", "workq-status [QUEUE...]: queue depth, latency and worker health", argc, argv);
}
}  // namespace

int main(int argc, char** argv) {
    return workq::cli::run("workq-status", argc, argv, unbuilt);
}
