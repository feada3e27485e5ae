// workq-queue ls|cancel|purge|pause|resume: act on live jobs
#include "cli/runner.hpp"
#include "cli/stub.hpp"

namespace {
int unbuilt(int argc, char** argv) {
    return workq::cli::run_unbuilt_tool(
        "queue", "workq-queue ls|cancel|purge|pause|resume: act on live jobs", argc, argv);
}
}  // namespace

int main(int argc, char** argv) {
    return workq::cli::run("workq-queue", argc, argv, unbuilt);
}
