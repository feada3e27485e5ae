#!/usr/bin/env bats
# The server misbehaves (CONTRACT.md §9): its script cache flushed, every connection killed,
# a restart with its append-only file (with 50 workers reconnecting at once), CLIENT PAUSE past
# the lease, out of memory; and workers whose clocks are wrong. Each scenario asserts its
# documented outcome, then the invariant checker.

load fault_helpers

setup() { fault_setup; }
teardown() { fault_teardown; }

last_error_reason() { rcli lindex "{$WORKQ_NAMESPACE:$1}:errors:$2" -1 | jq -r .reason; }

# id_of PAYLOAD: the id of the job enqueued with that payload (enqueue_jobs: job-N).
id_of() { sed -n "${1#job-}p" "$D/ids"; }

# script_reloads: NOSCRIPT errors (EVALSHA) plus FUNCTION LOADs (FCALL, Redis >= 7).
script_reloads() {
    local stats
    stats=$(redis-cli -s "$OWN/redis.sock" info everything | tr -d '\r')
    echo $(($(sed -n 's/^errorstat_NOSCRIPT:count=//p' <<<"$stats" | grep . || echo 0) +
        $(sed -n 's/^cmdstat_function|load:calls=\([0-9]*\).*/\1/p' <<<"$stats" | grep . || echo 0)))
}

# flush_scripts_every SECONDS: SCRIPT FLUSH and FUNCTION FLUSH in a loop (run with background).
flush_scripts_every() {
    while :; do
        rcli script flush >/dev/null
        rcli function flush >/dev/null 2>&1 || true
        sleep "$1"
    done
}

# enable_aof: the append-only file on, fsync on every write, before the scenario writes.
enable_aof() {
    rcli config set appendonly yes >/dev/null
    rcli config set appendfsync always >/dev/null
    wait_until 10 prints 0 redis_info_field "$OWN/redis.sock" aof_rewrite_in_progress
    wait_until 10 prints 1 redis_info_field "$OWN/redis.sock" aof_enabled
}

@test "SCRIPT FLUSH and FUNCTION FLUSH again and again while workers run: every script path loads its script again" {
    # job-1 succeeds at once, job-2 fails its first attempt, job-3 runs 3 leases long (renewals),
    # job-4 is held by a worker that is killed (the reaper takes it back).
    local h
    h=$(make_handler flushed <<EOF
echo \$\$ >>"\$FAULT_PIDS"
echo "start \$WORKQ_JOB_ID \$WORKQ_ATTEMPT \$\$" >>"\$FAULT_LEDGER"
case "\$(cat)" in
    job-2) [ "\$WORKQ_ATTEMPT" = 1 ] && exit 1 ;;
    job-3) sleep 3 ;;
    job-4) [ "\$WORKQ_ATTEMPT" = 1 ] && sleep 1000 ;;
esac
echo "end \$WORKQ_JOB_ID \$WORKQ_ATTEMPT" >>"\$FAULT_LEDGER"
EOF
)
    start_worker a -c 3 --lease 1s --backoff 100ms q -- "$h"
    local a=$LAST_PID
    wait_until 10 worker_field_is "$a" state running
    local heartbeat_before
    heartbeat_before=$(worker_field "$a" last_heartbeat)
    background flush_scripts_every 0.1
    # Through the proxy, with the tool: the enqueue script too.
    seq -f 'job-%g' 4 | workq-enqueue q >>"$D/ids"
    wait_until 15 state_is q "$(id_of job-1)" succeeded
    wait_until 15 state_is q "$(id_of job-2)" succeeded
    wait_until 15 state_is q "$(id_of job-3)" succeeded
    # job-4's worker dies; the reaper (of worker b) takes the job back.
    wait_until 10 at_least 1 ledger_starts "$(id_of job-4)"
    kill -9 "$a"
    start_worker b --lease 1s --backoff 100ms q -- "$h"
    local b=$LAST_PID
    wait_until 20 state_is q "$(id_of job-4)" succeeded
    wait_until 10 at_least $((heartbeat_before + 1)) worker_field "$b" last_heartbeat
    stop_background "$LAST_BACKGROUND"
    [ "$(script_reloads)" -ge 6 ] || fail "only $(script_reloads) NOSCRIPT errors and FUNCTION LOADs: the flushes missed"
    assert_equal "$(job_field q "$(id_of job-1)" attempts)" 1
    assert_equal "$(job_field q "$(id_of job-2)" attempts)" 2
    assert_equal "$(job_field q "$(id_of job-3)" attempts)" 1
    assert_equal "$(job_field q "$(id_of job-4)" attempts)" 2
    assert_equal "$(last_error_reason q "$(id_of job-4)")" lease
    check_invariants q "$D/ids" 0
}

@test "CLIENT KILL of every connection, three times while jobs flow: every job succeeds, counted once" {
    enqueue_jobs q 40
    FAULT_SLEEP=0.1 start_worker a -c 2 --lease 1s q -- "$HANDLERS/ledger.sh"
    FAULT_SLEEP=0.1 start_worker b -c 2 --lease 1s q -- "$HANDLERS/ledger.sh"
    local round
    for round in 1 2 3; do
        wait_until 15 at_least $((round * 8)) count_in_state q succeeded
        rcli client kill type normal >/dev/null
    done
    wait_until 30 all_settled q
    assert_equal "$(count_in_state q succeeded)" 40
    assert_log a "reconnected"
    assert_log b "reconnected"
    # Each kill may cost one duplicate per busy slot (3 kills x 4 slots).
    check_invariants q "$D/ids" 12
}

@test "Redis restarts with its append-only file while jobs run: workers reconnect, scripts load again, nothing is lost" {
    enable_aof
    enqueue_jobs q 30
    FAULT_SLEEP=0.2 start_worker a -c 2 --lease 1s q -- "$HANDLERS/ledger.sh"
    FAULT_SLEEP=0.2 start_worker b -c 2 --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 15 at_least 6 count_in_state q succeeded
    restart_redis --appendonly yes --appendfsync always
    wait_until 40 all_settled q
    assert_equal "$(count_in_state q succeeded)" 30
    assert_log a "reconnected"
    assert_log b "reconnected"
    check_invariants q "$D/ids" 4
}

@test "50 workers reconnect after a Redis restart, each after its own jittered delay, and all consume" {
    enable_aof
    mkdir "$D/gate"
    # job-N succeed at once; each hold-N waits until 50 of them run at the same time, which
    # needs every one of the 50 single-slot workers.
    local h
    h=$(make_handler gated <<EOF
echo \$\$ >>"\$FAULT_PIDS"
echo "start \$WORKQ_JOB_ID \$WORKQ_ATTEMPT \$\$" >>"\$FAULT_LEDGER"
case "\$(cat)" in hold-*)
    : >"$D/gate/\$WORKQ_JOB_ID"
    while [ "\$(ls "$D/gate" | wc -l)" -lt 50 ]; do sleep 0.1; done ;;
esac
echo "end \$WORKQ_JOB_ID \$WORKQ_ATTEMPT" >>"\$FAULT_LEDGER"
EOF
)
    local i
    for ((i = 1; i <= 50; i++)); do
        # A lease long enough that 50 workers on a loaded 2-core CI machine renew in time: the
        # test is about reconnecting, and a lapsed lease would rerun a held job.
        start_worker "w$i" --lease 5s q -- "$h"
    done
    wait_until 60 prints 50 rcli zcard "{$WORKQ_NAMESPACE}:workers"
    restart_redis --appendonly yes --appendfsync always
    enqueue_jobs q 100
    wait_until 60 all_settled q
    assert_equal "$(count_in_state q succeeded)" 100
    # Every worker came back; their first delays differ (jitter, not a thundering herd).
    for ((i = 1; i <= 50; i++)); do
        wait_until 20 log_has "w$i" "reconnected"
    done
    local distinct
    distinct=$(for ((i = 1; i <= 50; i++)); do
        grep -m1 -o 'reconnecting in [^ ]*' "$D/w$i.log"
    done | sort -u | wc -l)
    [ "$distinct" -ge 10 ] || fail "only $distinct distinct first reconnect delays among 50 workers"
    # Every one of them consumes again, not just PINGs.
    seq -f 'hold-%g' 50 | WORKQ_REDIS_URL=$DIRECT_URL workq-enqueue q >>"$D/ids"
    wait_until 60 all_settled q
    assert_equal "$(count_in_state q succeeded)" 150
    check_invariants q "$D/ids" 0
}

@test "CLIENT PAUSE longer than the lease: nothing is lost, each job completes once" {
    enqueue_jobs q 8
    FAULT_SLEEP=0.5 start_worker a -c 2 --lease 1s q -- "$HANDLERS/ledger.sh"
    FAULT_SLEEP=0.5 start_worker b -c 2 --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 10 has_lines "$FAULT_PIDS" 2
    rcli client pause 3000 all >/dev/null
    wait_until 40 all_settled q
    assert_equal "$(count_in_state q succeeded)" 8
    # Jobs whose leases lapsed during the pause may have run twice (4 slots).
    check_invariants q "$D/ids" 4
}

@test "Redis out of memory: enqueue fails with a clear message; workers still settle the jobs they hold" {
    enqueue_jobs q 4
    FAULT_SLEEP=2 start_worker a -c 4 --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 10 has_lines "$FAULT_PIDS" 4
    rcli config set maxmemory 1 >/dev/null
    run --separate-stderr workq-enqueue q more
    # The server refuses: exit 3, with its own words and what became of the input.
    assert_equal "$status" 3
    assert_output ""
    [[ "$stderr" == *"OOM command not allowed when used memory > 'maxmemory'"* ]] ||
        fail "unclear: $stderr"
    [[ "$stderr" == *"enqueued 0"* ]] || fail "unclear: $stderr"
    wait_until 20 all_settled q
    assert_equal "$(count_in_state q succeeded)" 4
    assert_equal "$(meta_field q succeeded)" 4
    alive "$LAST_PID"
    check_invariants q "$D/ids" 0
    rcli config set maxmemory 0 >/dev/null
    workq-enqueue q more >>"$D/ids"
    wait_until 10 all_settled q
    assert_equal "$(count_in_state q succeeded)" 5
    check_invariants q "$D/ids" 0
}

@test "workers whose clocks are 2 minutes fast and slow (libfaketime): no early reclaim, each job runs once" {
    enqueue_jobs q 4
    local faketime=(env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
        ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0")
    # Each job runs two and a half leases: only renewals keep it.
    FAULT_SLEEP=2.5 start_worker_under fast "${faketime[@]}" FAKETIME=+2m -- --lease 1s q -- "$HANDLERS/ledger.sh"
    local fast=$LAST_PID
    FAULT_SLEEP=2.5 start_worker_under slow "${faketime[@]}" FAKETIME=-2m -- --lease 1s q -- "$HANDLERS/ledger.sh"
    # The wrappers work: each worker sees its own time.
    wait_until 10 has_lines "$FAULT_PIDS" 2
    wait_until 20 all_settled q
    assert_equal "$(count_in_state q succeeded)" 4
    local id
    while read -r id; do
        assert_equal "$(job_field q "$id" attempts)" 1
        assert_equal "$(error_count q "$id")" 0
    done <"$D/ids"
    check_invariants q "$D/ids" 0
}
