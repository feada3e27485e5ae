// workq-dlq ls|show|requeue|rm|count: inspect and act on dead letters
#include "cli/runner.hpp"
#include "cli/stub.hpp"

namespace {
int unbuilt(int argc, char** argv) {
    return workq::cli::run_unbuilt_tool(
        "dlq", "workq-dlq ls|show|requeue|rm|count: inspect and act on dead letters", argc, argv);
}
}  // namespace

int main(int argc, char** argv) {
    return workq::cli::run("workq-dlq", argc, argv, unbuilt);
}
