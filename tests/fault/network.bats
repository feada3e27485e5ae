#!/usr/bin/env bats
# The network between the tools and Redis fails (CONTRACT.md §4 "Losing Redis", §9): a
# half-open connection (the proxy's blackhole), replies lost after the command was applied
# (`drop`, aimed at one script by its SHA1), replies cut mid-way. Each scenario asserts its
# documented outcome, then the invariant checker.

load fault_helpers

setup() { fault_setup; }
teardown() { fault_teardown; }

cuts_are() { [ "$(proxy_stat cuts)" -eq "$1" ]; }

last_error_reason() { rcli lindex "{$WORKQ_NAMESPACE:$1}:errors:$2" -1 | jq -r .reason; }

@test "an idle worker behind a blackhole for three lease periods, then a new job: it notices, reconnects and runs the job" {
    start_worker w --lease 1s q -- "$HANDLERS/ledger.sh"
    local w=$LAST_PID
    wait_until 10 blpop_clients_are 1
    proxy_ctl blackhole
    # The fault lasts three lease periods; its connections stay half-open for good.
    sleep 3
    proxy_ctl pass
    enqueue_jobs q 1
    local id
    id=$(cat "$D/ids")
    # Progress, not just a PING: the job runs, through a new connection.
    wait_until 30 state_is q "$id" succeeded
    assert_log w "lost connection to Redis"
    assert_log w "reconnected"
    assert_equal "$(job_field q "$id" attempts)" 1
    alive "$w"
    check_invariants q "$D/ids" 0
}

@test "a worker cut off mid-job past its lease: another worker completes the job; the cut-off worker's late settle is refused" {
    enqueue_jobs q 1
    local id
    id=$(cat "$D/ids")
    # The first attempt blocks until $D/go exists; later ones finish at once.
    local h
    h=$(make_handler blocking <<'EOF'
echo $$ >>"$FAULT_PIDS"
echo "start $WORKQ_JOB_ID $WORKQ_ATTEMPT $$" >>"$FAULT_LEDGER"
if [ "$WORKQ_ATTEMPT" = 1 ]; then
    while [ ! -e "$D/go" ]; do sleep 0.05; done
fi
echo "end $WORKQ_JOB_ID $WORKQ_ATTEMPT" >>"$FAULT_LEDGER"
printf 'result of attempt %s' "$WORKQ_ATTEMPT"
EOF
)
    export D
    start_worker a --log-level debug --lease 1s q -- "$h"
    local a=$LAST_PID
    wait_until 10 has_lines "$FAULT_PIDS" 1
    proxy_ctl blackhole
    # A worker on the other side of the partition takes the job once its lease lapses.
    WORKQ_REDIS_URL=$DIRECT_URL start_worker b --lease 1s q -- "$h"
    wait_until 20 state_is q "$id" succeeded
    assert_equal "$(job_field q "$id" result)" "result of attempt 2"
    # The cut-off handler finishes; the partition heals; its worker finds out.
    touch "$D/go"
    wait_until 5 process_gone "$(head -1 "$FAULT_PIDS")"
    proxy_ctl pass
    wait_until 30 log_has a "lease lost"
    ! log_has a "job succeeded" || fail "the cut-off worker reported a success"
    assert_equal "$(job_field q "$id" result)" "result of attempt 2"
    assert_equal "$(meta_field q succeeded)" 1
    alive "$a"
    # Its handler did run to its end: one duplicate, within one partition x one slot.
    check_invariants q "$D/ids" 1
}

@test "the reply to a claim is lost (applied, then the connection reset): the reaper returns the job, which runs once" {
    enqueue_jobs q 1
    local id
    id=$(cat "$D/ids")
    proxy_ctl drop 1 "$(script_sha claim)"
    start_worker w --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 25 state_is q "$id" succeeded
    assert_equal "$(proxy_stat dropped)" 1
    assert_log w "lost connection to Redis"
    # The lost claim was an attempt whose lease lapsed; the handler ran once.
    assert_equal "$(job_field q "$id" attempts)" 2
    assert_equal "$(last_error_reason q "$id")" lease
    assert_equal "$(ledger_starts "$id")" 1
    check_invariants q "$D/ids" 0
}

@test "a drain that begins while a claim is on its way: the worker waits for the reply and gives the job back at once, uncounted" {
    start_worker w --lease 60s q -- "$HANDLERS/ledger.sh"
    local w=$LAST_PID
    wait_until 10 blpop_clients_are 1
    # Every chunk through the proxy now takes 1.5 s each way: the wake-up's reply, the claim and
    # its reply. The claim is applied on the server 1.5 s before the worker hears of it.
    proxy_ctl delay 1500
    enqueue_jobs q 1
    local id
    id=$(cat "$D/ids")
    wait_until 20 state_is q "$id" running
    kill -TERM "$w"
    wait_exit "$w" 30
    assert_equal "$EXIT_CODE" 0
    # Had the worker left with the claim unanswered, the job would stay leased for 60 s.
    state_is q "$id" waiting || fail "the job is $(job_field q "$id" state), not waiting"
    assert_equal "$(job_field q "$id" attempts)" 0
    assert_equal "$(ledger_starts "$id")" 0
    proxy_ctl pass
    check_invariants q "$D/ids" 0
}

@test "the reply to a settle is lost: the retried settle is idempotent; succeeded once, no lease lost" {
    enqueue_jobs q 1
    local id
    id=$(cat "$D/ids")
    proxy_ctl drop 1 "$(script_sha complete)"
    # --max-jobs 1: no claim follows the job, so its success goes alone, in `complete`.
    start_worker w --log-level debug --lease 1s --max-jobs 1 q -- "$HANDLERS/ledger.sh"
    wait_until 15 state_is q "$id" succeeded
    assert_equal "$(proxy_stat dropped)" 1
    # The worker sent it again after reconnecting, and was told it succeeded.
    wait_until 15 log_has w "reconnected"
    wait_until 10 log_has w "job succeeded"
    ! log_has w "lease lost" || fail "the retried settle was refused"
    assert_equal "$(job_field q "$id" attempts)" 1
    assert_equal "$(meta_field q succeeded)" 1
    assert_equal "$(error_count q "$id")" 0
    check_invariants q "$D/ids" 0
}

@test "the reply to a round is lost (a success settled, the next job claimed): the success goes again in complete, a duplicate; the claimed job comes back after the lease" {
    enqueue_jobs q 2
    local first second
    first=$(sed -n 1p "$D/ids")
    second=$(sed -n 2p "$D/ids")
    # The round that carries the first job's success (its result, "done <id>") and claims the
    # second: applied on the server, its reply lost.
    proxy_ctl drop 1 "done $first"
    start_worker w --log-level debug --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 30 all_settled q
    assert_equal "$(proxy_stat dropped)" 1
    wait_until 15 log_has w "reconnected"
    ! log_has w "lease lost" || fail "the success sent again was refused"
    assert_equal "$(job_field q "$first" attempts)" 1
    assert_equal "$(ledger_runs "$first")" 1
    # Claimed by the round whose reply was lost: taken back after its lease, run once.
    assert_equal "$(job_field q "$second" attempts)" 2
    assert_equal "$(ledger_starts "$second")" 1
    assert_equal "$(meta_field q succeeded)" 2
    check_invariants q "$D/ids" 0
}

@test "the reply to an enqueue --unique is lost: the tool fails (exit 3); its retry finds the same job" {
    # The enqueue script is known to the server (a first EVALSHA would meet NOSCRIPT, and the
    # lost reply would be that error, the job never made).
    workq-enqueue warm-up x >/dev/null
    proxy_ctl drop 1 "$(script_sha enqueue)"
    run --separate-stderr workq-enqueue --unique nightly q payload
    assert_equal "$status" 3
    assert_output ""
    # Applied nevertheless: one job.
    assert_equal "$(job_count q)" 1
    run --separate-stderr workq-enqueue --unique nightly q payload
    assert_success
    local id=$output
    assert_equal "$(rcli --scan --pattern "{$WORKQ_NAMESPACE:q}:job:*")" "{$WORKQ_NAMESPACE:q}:job:$id"
    run --separate-stderr workq-enqueue --unique nightly q payload
    assert_output "$id"
    echo "$id" >"$D/ids"
    start_worker w --burst q -- "$HANDLERS/ledger.sh"
    wait_exit "$LAST_PID" 15
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(ledger_runs "$id")" 1
    check_invariants q "$D/ids" 0
}

@test "replies cut mid-way and delayed: every job still succeeds, each counted once" {
    enqueue_jobs q 20
    proxy_ctl delay 20
    start_worker w -c 2 --lease 1s q -- "$HANDLERS/ledger.sh"
    local w=$LAST_PID
    # Once it runs: a connection cut while the worker starts is "unreachable at start", exit 3.
    wait_until 10 worker_field_is "$w" state running
    local cut cuts=0
    for cut in 7 40 3; do
        proxy_ctl cut "$cut"
        cuts=$((cuts + 1))
        wait_until 15 cuts_are "$cuts"
    done
    wait_until 30 all_settled q
    assert_equal "$(count_in_state q succeeded)" 20
    assert_log w "reconnected"
    # Each cut may cost one duplicate per slot.
    check_invariants q "$D/ids" 6
}

@test "the reply to a failed attempt's settle is lost: the retry is idempotent, the attempt counted once" {
    WORKQ_REDIS_URL=$DIRECT_URL workq-enqueue --max-attempts 3 q x >"$D/ids"
    local id
    id=$(cat "$D/ids")
    proxy_ctl drop 1 "$(script_sha fail)"
    start_worker w --lease 1s --backoff 100ms q -- "$HANDLERS/exit.sh" 1
    wait_until 20 state_is q "$id" dead
    assert_equal "$(proxy_stat dropped)" 1
    assert_log w "reconnected"
    assert_equal "$(job_field q "$id" attempts)" 3
    assert_equal "$(error_count q "$id")" 3
    assert_equal "$(ledger_starts "$id")" 3
    assert_equal "$(meta_field q failed)" 3
    check_invariants q "$D/ids" 0
}

@test "a handler flooding stdout and stderr while replies are delayed: the result arrives cut at --max-result, the job succeeds" {
    enqueue_jobs q 2
    proxy_ctl delay 50
    start_worker w --lease 1s --max-result 64KiB q -- "$HANDLERS/flood.sh" 1000000 20000
    wait_until 30 all_settled q
    local id
    while read -r id; do
        assert_raw_state q "$id" succeeded
        assert_equal "$(rcli hstrlen "{$WORKQ_NAMESPACE:q}:job:$id" result)" 65536
        assert_equal "$(job_field q "$id" truncated)" $((1000000 - 65536))
        assert_equal "$(ledger_runs "$id")" 1
    done <"$D/ids"
    check_invariants q "$D/ids" 0
}
