// workq-work [OPTIONS] QUEUE[,QUEUE...] -- COMMAND [ARG...]: run a worker
#include "cli/runner.hpp"
#include "cli/stub.hpp"

namespace {
int unbuilt(int argc, char** argv) {
    return workq::cli::run_unbuilt_tool(
        "work", "workq-work [OPTIONS] QUEUE[,QUEUE...] -- COMMAND [ARG...]: run a worker", argc,
        argv);
}
}  // namespace

int main(int argc, char** argv) {
    return workq::cli::run("workq-work", argc, argv, unbuilt);
}
