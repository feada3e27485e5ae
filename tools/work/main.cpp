// workq-work [OPTIONS] QUEUE[,QUEUE...] -- COMMAND [ARG...]
//
// Runs a worker: claims jobs from the queues (strict priority in the order given) and runs
// COMMAND for each, in its own process group, with the payload on stdin. Writes nothing to
// stdout; logs go to stderr. See settings.cpp for the whole manual (--help).
#include "cli/runner.hpp"
#include "settings.hpp"
#include "worker.hpp"

namespace {

int work_main(int argc, char** argv) {
    auto settings = workq::work::parse_settings(argc, argv);
    workq::work::Worker worker(argc, argv, std::move(settings));
    return worker.run();
}

}  // namespace

int main(int argc, char** argv) {
    return workq::cli::run("workq-work", argc, argv, work_main);
}
