#!/usr/bin/env bats
# Redis Cluster (CONTRACT.md §10, issue 19): every tool through a cluster URL, each call routed
# to the master of its slot. One real cluster per file (cluster_helpers.bash): three masters and
# a replica of each on loopback; each test its own namespace. A CROSSSLOT answered by any node
# fails the test (cluster_teardown).

load cluster_helpers

setup_file() { cluster_file_setup; }
teardown_file() { cluster_file_teardown; }
setup() { cluster_setup; }
teardown() { cluster_teardown; }

@test "enqueue, queue ls, per-job work and status on queues of three masters" {
    local queues q
    queues=$(queues_on_masters 3)
    for q in $queues; do
        run --separate-stderr workq-enqueue "$q" a b c
        assert_success
        [ "${#lines[@]}" -eq 3 ] || fail "expected 3 ids: $output / $stderr"
        printf '%s\n' "${lines[@]}" >"$D/ids.$q"
        # The jobs are on the master of the queue's slot.
        use_queue_node "$q"
        assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:$q}:waiting:0")" 3
        run --separate-stderr workq-queue ls "$q"
        assert_success
        [ "$(grep -c waiting <<<"$output")" -eq 3 ] || fail "workq-queue ls: $output"
    done
}
