#!/usr/bin/env bats
# workq-enqueue --wait: results in input order on stdout, ids on stderr, exit 0/1/124.

load work_helpers

setup() { work_setup; }
teardown() { work_teardown; }

@test "--wait prints each job's result in input order, ids on stderr, exit 0" {
    # The first job is the slowest, so the jobs end out of input order.
    start_worker w -c 3 q -- sh -c 'read -r n; sleep "0.$n"; echo "result $n"'
    run --separate-stderr timeout 30 workq-enqueue --wait q 3 1 2
    assert_success
    assert_equal "$output" "$(printf 'result 3\nresult 1\nresult 2')"
    [ "$(grep -c 'enqueued' <<<"$stderr")" -eq 3 ] || fail "the three ids are not on stderr: $stderr"
    local id
    id=$(grep -o 'enqueued [0-9a-z]*' <<<"$stderr" | head -1 | cut -d' ' -f2)
    assert_raw_state q "$id" succeeded
}

@test "--wait reads stdin too, and keeps the results' bytes exactly" {
    start_worker w q -- sh -c 'cat; printf "\\n"'
    run --separate-stderr timeout 30 sh -c 'printf "a b\nc\n" | workq-enqueue --wait q'
    assert_success
    assert_equal "$output" "$(printf 'a b\nc')"
}

@test "--wait exits 1 when a job ends dead, naming it on stderr; the others' results still print" {
    start_worker w q -- sh -c 'read -r x; [ "$x" = bad ] && { echo "cannot do $x" >&2; exit 100; }; echo "ok $x"'
    run --separate-stderr timeout 30 workq-enqueue --wait q good bad
    assert_equal "$status" 1
    assert_equal "$output" "ok good"
    [[ "$stderr" == *"ended dead"*"cannot do bad"* ]] || fail "stderr does not say which job died and why: $stderr"
}

@test "--wait-timeout passes with no worker: exit 124 in bounded time, the job stays enqueued" {
    local start=$SECONDS
    run --separate-stderr timeout 20 workq-enqueue --wait --wait-timeout 1s q x
    assert_equal "$status" 124
    [ $((SECONDS - start)) -lt 10 ] || fail "took $((SECONDS - start))s"
    [[ "$stderr" == *"--wait-timeout"* ]] || fail "stderr does not name the timeout: $stderr"
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 1
}

waiting_count_is() { [ "$(rcli llen "{$WORKQ_NAMESPACE:$1}:waiting:0")" = "$2" ]; }

@test "--wait-timeout 0 is no limit: it waits as long as the job takes" {
    {
        rc=0
        workq-enqueue --wait --wait-timeout 0 q x >"$BATS_TEST_TMPDIR/out" 2>/dev/null || rc=$?
        echo "$rc" >"$BATS_TEST_TMPDIR/rc"
    } &
    wait_until 10 waiting_count_is q 1
    # Still waiting with no worker (no exit 124 however long "0" is read as).
    sleep 1
    [ ! -s "$BATS_TEST_TMPDIR/rc" ] || fail "gave up: exit $(cat "$BATS_TEST_TMPDIR/rc")"
    start_worker w --burst q -- sh -c 'read -r x; echo "done $x"'
    wait_until 20 test -s "$BATS_TEST_TMPDIR/rc"
    wait
    assert_equal "$(cat "$BATS_TEST_TMPDIR/rc")" 0
    assert_equal "$(cat "$BATS_TEST_TMPDIR/out")" "done x"
}

@test "--wait on an --id that already ended prints its result at once" {
    start_worker w q -- sh -c 'read -r x; echo "done $x"'
    id=$(workq-enqueue --id job-1 q first)
    wait_until 10 state_is q job-1 succeeded
    run --separate-stderr timeout 20 workq-enqueue --wait --id job-1 q second
    assert_success
    assert_equal "$output" "done first"
}

@test "--wait-timeout without --wait is a usage error" {
    run --separate-stderr workq-enqueue --wait-timeout 1s q x
    assert_equal "$status" 2
    [[ "$stderr" == *"--wait"* ]] || fail "$stderr"
}
