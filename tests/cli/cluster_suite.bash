# The suite setup of CTest's topology.cluster_cli (`bats --setup-suite-file`): one Redis Cluster
# for every file of the run (WORKQ_TEST_TOPOLOGY=cluster, helpers.bash), made before the first
# and stopped after the last; each file's workq_test_setup_file takes it (WORKQ_TEST_CLUSTER).

source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

setup_suite() {
    [ "$WORKQ_TEST_TOPOLOGY" = cluster ] || {
        echo "cluster_suite.bash is for WORKQ_TEST_TOPOLOGY=cluster" >&2
        return 1
    }
    BATS_FILE_TMPDIR=$BATS_SUITE_TMPDIR cluster_start
    export WORKQ_TEST_CLUSTER=$CLUSTER
}

teardown_suite() { cluster_stop; }
