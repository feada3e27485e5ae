#!/usr/bin/env bats
# A worker's life from end to end (issues 22, 23 and 24): short-lived workers (--burst, --max-jobs)
# take back what a killed worker left overdue before they decide that nothing is due, and a burst
# waits for the retries of the jobs it ran; workq-status shows overdue jobs; the reaper takes a
# job back only when its own lease lapsed.

load work_helpers

setup() { work_setup; }
teardown() { work_teardown; }

# A handler that blocks on its first attempt (recording its pid in $D/handler.pid) until $D/go
# exists; later attempts finish at once. Every run appends to $D/ledger.
first_attempt_blocks() {
    make_handler h <<'EOF'
echo "start $WORKQ_JOB_ID $WORKQ_ATTEMPT" >>"$D/ledger"
if [ "$WORKQ_ATTEMPT" = 1 ]; then
    echo $$ >"$D/handler.pid"
    while [ ! -e "$D/go" ]; do sleep 0.05; done
fi
echo "end $WORKQ_JOB_ID $WORKQ_ATTEMPT" >>"$D/ledger"
EOF
}

# lease_lapsed QUEUE ID: the job's lease deadline is past by the server's clock.
lease_lapsed() {
    local deadline now
    deadline=$(rcli zscore "{$WORKQ_NAMESPACE:$1}:running" "$2")
    [ -n "$deadline" ] || return 1
    now=$(rcli eval "local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)" 0)
    [ "${deadline%.*}" -lt "$now" ]
}

# kill_mid_job QUEUE ID HANDLER: a worker (--lease 1s) starts the job's first attempt and is
# killed with SIGKILL; returns once the job's lease has lapsed, the job still `running`.
kill_mid_job() {
    local queue=$1 id=$2 handler=$3
    export D
    start_worker victim --lease 1s "$queue" -- "$handler"
    local victim=$LAST_PID
    wait_until 10 has_lines "$D/handler.pid" 1
    kill -9 "$victim"
    wait_until 5 process_gone "$(cat "$D/handler.pid")"
    wait_until 10 lease_lapsed "$queue" "$id"
    assert_raw_state "$queue" "$id" running
}

# ---- taking back what is overdue ------------------------------------------------------------

@test "a --burst takes back a job whose worker was killed mid-job before it decides nothing is due" {
    id=$(workq-enqueue q x)
    h=$(first_attempt_blocks)
    kill_mid_job q "$id" "$h"
    # workq-status shows the job as overdue meanwhile.
    run --separate-stderr workq-status --json
    assert_success
    assert_equal "$(jq '.queues[] | select(.name == "q") | .overdue' <<<"$output")" 1
    run --separate-stderr workq-status
    assert_output --partial "q: 1 running job(s) overdue"
    run --separate-stderr workq-status job "$id"
    assert_output --partial "overdue: lease lapsed"
    # The cron case: a burst run after the lease lapsed.
    start_worker b --burst --lease 1s q -- "$h"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$id" succeeded
    assert_equal "$(job_field q "$id" attempts)" 2
    assert_equal "$(job_field q "$id" reason)" lease
    assert_log b "took back 1 job(s) whose lease lapsed"
    run --separate-stderr workq-status --json
    assert_equal "$(jq '.queues[] | select(.name == "q") | .overdue' <<<"$output")" 0
}

@test "with --unique, the overdue job no longer holds its key once a burst took it back and ran it" {
    id=$(workq-enqueue --unique report q x)
    h=$(first_attempt_blocks)
    kill_mid_job q "$id" "$h"
    # While it is overdue the key is held: the same id comes back.
    assert_equal "$(workq-enqueue --unique report q y)" "$id"
    start_worker b --burst --lease 1s q -- "$h"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$id" succeeded
    other=$(workq-enqueue --unique report q z)
    [ "$other" != "$id" ] || fail "the key is still held by $id"
    start_worker c --burst q -- cat
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$other" succeeded
}

@test "a --max-jobs worker takes back the overdue job first (it goes to the head of its queue)" {
    id=$(workq-enqueue q x)
    h=$(first_attempt_blocks)
    kill_mid_job q "$id" "$h"
    later=$(workq-enqueue q later)
    start_worker b --max-jobs 1 --lease 1s q -- "$h"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$id" succeeded
    assert_raw_state q "$later" waiting
}

@test "a job is taken back when its own lease lapses, not when its worker's heartbeat goes silent" {
    id=$(workq-enqueue q x)
    h=$(first_attempt_blocks)
    export D
    start_worker frozen --lease 1m q -- "$h"
    frozen=$LAST_PID
    wait_until 10 has_lines "$D/handler.pid" 1
    kill -STOP "$frozen"
    # Its heartbeat made 20 s old: the registry calls it lost at once (no 15 s wait).
    frozen_id=$(worker_id_of "$frozen")
    now=$(rcli eval "local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)" 0)
    rcli zadd "{$WORKQ_NAMESPACE}:workers" $((now - 20000)) "$frozen_id" >/dev/null
    rcli hset "{$WORKQ_NAMESPACE}:worker:$frozen_id" last_heartbeat $((now - 20000)) >/dev/null
    start_worker other --log-level debug --lease 1s q -- "$h"
    # Three reaper passes of the other worker, each after a heartbeat that saw the frozen worker
    # lost: its job's lease (1m) still holds, so it stays with its holder.
    wait_until 30 eval '[ "$(grep -c "reaper pass" "$D/other.log")" -ge 3 ]'
    assert_equal "$(workq-status --json 2>/dev/null | jq -r ".workers[] | select(.id == \"$frozen_id\") | .live")" false
    assert_raw_state q "$id" running
    assert_equal "$(job_field q "$id" worker)" "$frozen_id"
    ! log_has other "took back" || fail "the job of a lost but frozen worker was taken back early"
    # Thawed, the frozen worker finishes its job: it ran once.
    kill -CONT "$frozen"
    touch "$D/go"
    wait_until 15 state_is q "$id" succeeded
    assert_equal "$(job_field q "$id" attempts)" 1
    assert_equal "$(grep -c '^start' "$D/ledger")" 1
}
