#!/usr/bin/env bats
# workq-enqueue --wait: results in input order on stdout, ids on stderr, exit 0/1/124.

load work_helpers

# One cluster for the file when WORKQ_TEST_TOPOLOGY=cluster (helpers.bash).
setup_file() { workq_test_setup_file; }
teardown_file() { workq_test_teardown_file; }

setup() { work_setup; }
teardown() { work_teardown; }

# bats test_tags=cluster
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

# bats test_tags=cluster
@test "--wait reads stdin too, and keeps the results' bytes exactly" {
    start_worker w q -- sh -c 'cat; printf "\\n"'
    run --separate-stderr timeout 30 sh -c 'printf "a b\nc\n" | workq-enqueue --wait q'
    assert_success
    assert_equal "$output" "$(printf 'a b\nc')"
}

# bats test_tags=cluster
@test "--wait exits 1 when a job ends dead, naming it on stderr; the others' results still print" {
    start_worker w q -- sh -c 'read -r x; [ "$x" = bad ] && { echo "cannot do $x" >&2; exit 100; }; echo "ok $x"'
    run --separate-stderr timeout 30 workq-enqueue --wait q good bad
    assert_equal "$status" 1
    assert_equal "$output" "ok good"
    [[ "$stderr" == *"ended dead"*"cannot do bad"* ]] || fail "stderr does not say which job died and why: $stderr"
}

# bats test_tags=cluster
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

# bats test_tags=cluster
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

# ---- issue 24 item 4, issue 23 item 10 ------------------------------------------------------

@test "--wait ends each result with a newline unless it has one (no HELLOWORLD); -0 with NUL" {
    start_worker w q -- sh -c 'printf "%s" "$(tr a-z A-Z)"'
    run --separate-stderr timeout 30 workq-enqueue --wait q hello world
    assert_success
    assert_equal "$output" "$(printf 'HELLO\nWORLD')"
    printf 'hello\0world\0' | timeout 30 workq-enqueue -0 --wait q >"$D/out"
    printf 'HELLO\0WORLD\0' >"$D/expected"
    cmp "$D/out" "$D/expected" || fail "got: $(od -c "$D/out")"
    # A result that ends with its newline keeps just that one.
    workq-enqueue q >/dev/null </dev/null
    timeout 30 workq-enqueue --wait q 'x
' >"$D/out2"
    printf 'X\n' >"$D/expected2"
    cmp "$D/out2" "$D/expected2" || fail "got: $(od -c "$D/out2")"
}

# bats test_tags=cluster
@test "--wait marks a job that did not succeed with an empty record in its place, and names it" {
    start_worker w q -- sh -c 'read -r x; [ "$x" = bad ] && { echo "cannot do $x" >&2; exit 100; }; echo "ok $x"'
    run --separate-stderr timeout 30 sh -c 'workq-enqueue --wait q good bad good2 >"$1"' _ "$D/out"
    assert_equal "$status" 1
    printf 'ok good\n\nok good2\n' >"$D/expected"
    cmp "$D/out" "$D/expected" || fail "got: $(od -c "$D/out")"
    [[ "$stderr" == *"ended dead: cannot do bad; its result is an empty record"* ]] || fail "$stderr"
}

@test "--wait says on stderr when no live worker serves the queue; not when one does" {
    run --separate-stderr timeout 30 workq-enqueue --wait --wait-timeout 5s q x
    assert_equal "$status" 124
    [[ "$stderr" == *"no live worker serves queue q"*"workq-work q -- COMMAND"* ]] || fail "$stderr"
    # A live worker of the queue, paused: the job waits, and nothing is said about workers.
    workq-queue pause q 2>/dev/null
    start_worker w q -- cat
    wait_until 10 eval 'workq-status --json | jq -e ".workers[] | select(.live)" >/dev/null'
    run --separate-stderr timeout 30 workq-enqueue --wait --wait-timeout 5s q y
    assert_equal "$status" 124
    [[ "$stderr" != *"no live worker"* ]] || fail "$stderr"
    [[ "$stderr" == *"still waiting for: "* ]] || fail "the pending id is not named: $stderr"
}

@test "--wait for a job whose worker keeps no result (--result-ttl 0): succeeded, its result printed" {
    start_worker w --result-ttl 0 q -- sh -c 'read -r x; echo "done $x"'
    run --separate-stderr timeout 30 workq-enqueue --wait q a b
    assert_success
    assert_equal "$output" "$(printf 'done a\ndone b')"
    [[ "$stderr" != *unknown* ]] || fail "$stderr"
}

# restart_own_redis DIR: stops the test's own server and starts it again on the same socket and
# data (append-only file), as a restart would.
restart_own_redis() {
    local dir=$1 pid
    pid=$(cat "$dir/redis.pid")
    kill "$pid"
    wait_until 10 process_gone "$pid"
    start_redis "$dir" --appendonly yes --appendfsync always
}

@test "--wait -q across a Redis restart: waits on, the result comes; a server that stays away names the ids (exit 3)" {
    local own="$BATS_TEST_TMPDIR/own"
    mkdir -p "$own"
    start_redis "$own" --appendonly yes --appendfsync always
    export WORKQ_REDIS_URL="unix://$own/redis.sock" WORKQ_TEST_REDIS_SOCKET="$own/redis.sock"
    {
        rc=0
        workq-enqueue -q --wait q x >"$D/out" 2>"$D/err" || rc=$?
        echo "$rc" >"$D/rc"
    } &
    wait_until 10 waiting_count_is q 1
    restart_own_redis "$own"
    start_worker w --burst q -- sh -c 'read -r x; echo "done $x"'
    wait_until 30 test -s "$D/rc" || fail "still waiting: $(cat "$D/err")"
    wait
    assert_equal "$(cat "$D/rc")" 0
    assert_equal "$(cat "$D/out")" "done x"
    # The server goes away for good: exit 3, and even with -q the id is on stderr.
    local id
    id=$(workq-enqueue --id lost-1 q y)
    {
        rc=0
        workq-enqueue -q --wait --wait-timeout 4s --id lost-1 q y >"$D/out" 2>"$D/err" || rc=$?
        echo "$rc" >"$D/rc2"
    } &
    wait_until 10 eval '[ "$(rcli client list | grep -c cmd=blpop)" -ge 1 ]'
    stop_redis "$own"
    wait_until 30 test -s "$D/rc2"
    wait
    assert_equal "$(cat "$D/rc2")" 3
    grep -q "lost-1" "$D/err" || fail "the id is not on stderr: $(cat "$D/err")"
}
