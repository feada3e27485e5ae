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

@test "per-job and persistent work, --wait, --unique, priorities and delays on queues of three masters" {
    local queues q
    queues=$(queues_on_masters 3)
    for q in $queues; do
        run --separate-stderr workq-enqueue --priority 5 "$q" high
        assert_success
        echo "$output" >>"$D/ids.$q"
        run --separate-stderr workq-enqueue "$q" low
        assert_success
        echo "$output" >>"$D/ids.$q"
        run --separate-stderr workq-enqueue --unique "u-$q" "$q" once
        assert_success
        echo "$output" >>"$D/ids.$q"
        run --separate-stderr workq-enqueue --unique "u-$q" "$q" again
        assert_success
        run --separate-stderr workq-enqueue --delay 1s "$q" later
        assert_success
        echo "$output" >>"$D/ids.$q"
    done
    for q in $queues; do
        # One worker per queue, each on the master of its queue's slot; the delayed job is due
        # within a second, so --burst waits for it.
        run --separate-stderr workq-work --burst "$q" -- "$HANDLERS/ledger.sh"
        assert_success
        use_queue_node "$q"
        check_invariants "$q" "$D/ids.$q"
        # The higher priority ran before the other waiting jobs of its queue.
        assert_equal "$(grep -Ff "$D/ids.$q" "$FAULT_LEDGER" | awk '/^start/ { print $2; exit }')" "$(head -1 "$D/ids.$q")"
    done
    # --wait through a worker that runs meanwhile (persistent handler protocol is tested on a
    # single server; here the path of the result through the cluster).
    q=$(head -1 <<<"$queues")
    start_worker w "$q" -- "$HANDLERS/ledger.sh"
    run --separate-stderr timeout 30 workq-enqueue --wait "$q" waited
    assert_success
    assert_output --partial done
}

@test "queue ls/cancel/purge/pause/resume, dlq ls/show/requeue/rm, status and schedules through the cluster" {
    local queues q id
    queues=$(queues_on_masters 3)
    for q in $queues; do
        run --separate-stderr workq-enqueue "$q" a b c
        assert_success
        printf '%s\n' "${lines[@]}" >"$D/ids.$q"
        id=$(head -1 "$D/ids.$q")
        run --separate-stderr workq-queue cancel "$id"
        assert_success
        run --separate-stderr workq-queue pause "$q"
        assert_success
        run --separate-stderr workq-queue ls "$q"
        assert_success
        run --separate-stderr workq-queue resume "$q"
        assert_success
        run --separate-stderr workq-status job "$id"
        assert_success
        assert_output --partial cancelled
        # A job that fails for good becomes a dead letter.
        run --separate-stderr workq-enqueue --max-attempts 1 "$q" doomed
        assert_success
        echo "$output" >"$D/dead.$q"
        run --separate-stderr workq-work --burst "$q" -- sh -c 'read -r p; [ "$p" != doomed ]'
        assert_equal "$status" 1
        run --separate-stderr workq-dlq ls "$q"
        assert_success
        assert_output --partial "$(cat "$D/dead.$q")"
        run --separate-stderr workq-dlq show "$(cat "$D/dead.$q")"
        assert_success
        run --separate-stderr workq-dlq requeue "$q" "$(cat "$D/dead.$q")"
        assert_success
        run --separate-stderr workq-queue purge --yes "$q"
        assert_success
        run --separate-stderr workq-enqueue --max-attempts 1 "$q" doomed
        run --separate-stderr workq-work --burst "$q" -- false
        run --separate-stderr workq-dlq rm --all "$q"
        assert_success
        run --separate-stderr workq-schedule add "nightly-$q" "$q" --cron @daily x
        assert_success
    done
    run --separate-stderr workq-schedule ls
    assert_success
    for q in $queues; do assert_output --partial "nightly-$q"; done
    run --separate-stderr workq-status --json
    assert_success
    for q in $queues; do
        [ "$(jq -r --arg q "$q" '.queues[] | select(.name == $q) | .name' <<<"$output")" = "$q" ] ||
            fail "$q missing from status: $output"
    done
    run --separate-stderr workq-status
    assert_success
    run --separate-stderr workq-status --prometheus
    assert_success
    for q in $queues; do
        run --separate-stderr workq-schedule rm "nightly-$q"
        assert_success
        run --separate-stderr workq-queue rm --force "$q"
        assert_success
    done
}

@test "a worker serving several queues on different masters is refused (exit 2), one queue per worker works" {
    local queues
    queues=$(queues_on_masters 2 | paste -sd,)
    run --separate-stderr workq-work --burst $queues -- true
    assert_equal "$status" 2
    [[ "$stderr" == *"serving several queues on a cluster needs"* ]] || fail "$stderr"
}

@test "one server of the cluster named: found to be a cluster (INFO), routed the same" {
    local q
    q=$(queues_on_masters 3 | tail -1)
    run --separate-stderr workq-enqueue --redis "redis://127.0.0.1:$(cluster_port n1)" "$q" x
    assert_success
    use_queue_node "$q"
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:$q}:waiting:0")" 1
    # A database other than 0 does not exist on a cluster.
    run --separate-stderr workq-enqueue --redis "redis://127.0.0.1:$(cluster_port n1)/1" "$q" x
    assert_equal "$status" 3
    [[ "$stderr" == *"SELECT"* ]] || fail "$stderr"
}
