#!/usr/bin/env bats
# workq-work under the limits of its machine (issue 23): the descriptor limit raised and checked
# against -c at start, a handler that cannot be started for want of descriptors (its job goes
# back uncounted, the worker goes on), a result longer than the server takes (issue 23, item 7:
# stored cut, never sent again and again), a stderr nobody reads (the worker's loop never blocks on
# its own logs), processes that escape a handler's process group (the worker is their
# subreaper and kills them), and SIGHUP lowering --persistent concurrency.

load work_helpers

setup() { work_setup; }
teardown() { work_teardown; }

# ---- descriptors ------------------------------------------------------------------------------

@test "-c that does not fit in the descriptor limit is exit 2 at start, naming the limit and the -c that fits" {
    run --separate-stderr bash -c 'ulimit -n 200 && exec workq-work -c 100 q -- true'
    assert_equal "$status" 2
    [[ "$stderr" == *"--concurrency 100 needs about"*"the limit is 200"*"--concurrency 45 at most"* ]] ||
        fail "$stderr"
    # Nothing was registered: refused before connecting.
    assert_equal "$(rcli zcard "{$WORKQ_NAMESPACE}:workers")" 0
}

@test "the soft descriptor limit is raised to the hard one; handlers get the soft limit the worker started with" {
    local n=40 i
    for i in $(seq $n); do echo "$i"; done | workq-enqueue q >"$D/ids"
    # Every handler waits until all have started, so that 40 hold their pipes at once (120
    # descriptors: more than the soft limit of 100 the worker starts with).
    local handler
    handler=$(make_handler h <<EOF
echo x >>"$D/started"
i=0
while [ "\$(wc -l <"$D/started")" -lt $n ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
ulimit -Sn
EOF
)
    bash -c "ulimit -Sn 100 && exec workq-work --burst -c $n q -- '$handler'" \
        >"$D/w.out" 2>"$D/w.log" 3>&- || fail "exit $?: $(tail -5 "$D/w.log")"
    assert_no_stdout w
    local id
    while read -r id; do
        assert_raw_state q "$id" succeeded
        assert_equal "$(job_field q "$id" result)" 100
        assert_equal "$(job_attempts q "$id")" 1
    done <"$D/ids"
}

# free_fd_limit PID FREE: the descriptor limit that leaves the process exactly FREE descriptors
# it may still open (below the limit, in the gaps between those it holds).
free_fd_limit() {
    local pid=$1 want=$2 fds limit=0 free=0
    fds=$(ls "/proc/$pid/fd") || return 1
    while [ "$free" -lt "$want" ]; do
        grep -qx "$limit" <<<"$fds" || free=$((free + 1))
        limit=$((limit + 1))
    done
    echo "$limit"
}

@test "a handler that cannot be started (no descriptor left) releases its job uncounted; the worker goes on" {
    # The worker is not dumpable: only root reads its /proc/PID/fd.
    [ "$(id -u)" = 0 ] || skip "needs root to read the worker's /proc/PID/fd"
    start_worker w q -- sh -c 'echo ran'
    local pid=$LAST_PID warm id limit
    warm=$(workq-enqueue q warm)
    wait_until 20 state_is q "$warm" succeeded
    # Two descriptors left: a handler's first pipe takes them, the second is refused (EMFILE).
    # (Not none: the sanitizers' own memory checks need a pipe.)
    limit=$(free_fd_limit "$pid" 2)
    prlimit --pid "$pid" --nofile="$limit": || fail "prlimit refused"
    id=$(workq-enqueue q job)
    wait_until 20 log_has w "job released (attempt not counted)" || fail "$(tail -5 "$D/w.log")"
    alive "$pid"
    assert_log w "cannot start the handler"
    prlimit --pid "$pid" --nofile=1024: || fail "prlimit refused"
    wait_until 20 state_is q "$id" succeeded
    assert_equal "$(job_attempts q "$id")" 1
    assert_equal "$(error_count q "$id")" 0
    kill -TERM "$pid"
    wait_exit "$pid" 20
    assert_equal "$EXIT_CODE" 0
}

# ---- what the server takes --------------------------------------------------------------------

# own_redis ARGS...: the test's own server, started with ARGS (stopped by work_teardown); the
# tools and rcli use it.
own_redis() {
    local own="$BATS_TEST_TMPDIR/own"
    mkdir -p "$own"
    start_redis "$own" "$@"
    export WORKQ_REDIS_URL="unix://$own/redis.sock" WORKQ_TEST_REDIS_SOCKET="$own/redis.sock"
}

# A handler whose result is 2,000,000 bytes.
BIG_RESULT='cat >/dev/null; head -c 2000000 /dev/zero | tr "\0" a'

@test "a result longer than the server's proto-max-bulk-len is stored cut to it, never sent again and again" {
    # Issue 23, item 7: the settle made the server hang up, and went again at every reconnect.
    own_redis --proto-max-bulk-len 1mb
    local id
    id=$(workq-enqueue q x)
    start_worker w --burst --max-result 4MiB q -- sh -c "$BIG_RESULT"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$id" succeeded
    local kept
    kept=$(rcli hstrlen "{$WORKQ_NAMESPACE:q}:job:$id" result)
    assert_equal "$kept" $((1048576 - 65536))
    assert_equal "$(job_field q "$id" truncated)" $((2000000 - kept))
    assert_log w "result of 2000000 bytes cut at $kept: the server takes no longer argument"
    run grep -c "lost connection" "$D/w.log"
    assert_output 0
}

@test "when the worker cannot read that limit (CONFIG renamed away), the report the server hangs up on goes cut after three tries" {
    own_redis --proto-max-bulk-len 1mb --rename-command CONFIG '""'
    local id
    id=$(workq-enqueue q x)
    start_worker w --burst --max-result 4MiB q -- sh -c "$BIG_RESULT"
    wait_exit "$LAST_PID" 60
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$id" succeeded
    local kept
    kept=$(rcli hstrlen "{$WORKQ_NAMESPACE:q}:job:$id" result)
    [ "$kept" -gt 0 ] && [ "$kept" -le $((1048576 - 65536)) ] || fail "kept $kept bytes"
    assert_equal "$(job_field q "$id" truncated)" $((2000000 - kept))
    assert_equal "$(job_field q "$id" attempts)" 1
    assert_log w "the report of the success of $id:"
    assert_log w "sent again with the results cut to 983040 bytes in all (recorded as truncated)"
    # The server hung up at most three times (it may say why first: then at once).
    local lost
    lost=$(grep -c "lost connection" "$D/w.log" || true)
    [ "$lost" -le 3 ] || fail "$lost reconnects: $(grep 'lost connection' "$D/w.log")"
}
