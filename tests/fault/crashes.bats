#!/usr/bin/env bats
# Workers that die, freeze or are stopped at the worst moments (CONTRACT.md §9, at least once):
# kill -9 in each window of a job's life (crash points reach the narrow ones), a poison pill,
# SIGTERM with handlers that will not stop, SIGTERM while Redis cannot be reached. Each
# scenario asserts its documented outcome, then the invariant checker.
# (A frozen worker past its lease is tests/cli/work_signals.bats.)

load fault_helpers

setup() { fault_setup; }
teardown() { fault_teardown; }

# attempts_of QUEUE ID
attempts_of() { job_field "$1" "$2" attempts; }

# last_error_reason QUEUE ID: the reason of the job's most recent failed attempt.
last_error_reason() { rcli lindex "{$WORKQ_NAMESPACE:$1}:errors:$2" -1 | jq -r .reason; }

@test "kill -9 after the claim, before the handler starts: the job comes back after the lease and runs once" {
    enqueue_jobs q 3
    WORKQ_CRASH_AT=after-claim start_worker a --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_exit "$LAST_PID" 15
    assert_equal "$EXIT_CODE" 137
    # It held one job and ran nothing.
    local held
    held=$(rcli zrange "{$WORKQ_NAMESPACE:q}:running" 0 -1)
    assert_equal "$(echo "$held" | wc -w)" 1
    assert_equal "$(wc -l <"$FAULT_LEDGER")" 0
    start_worker b --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 20 all_settled q
    assert_equal "$(count_in_state q succeeded)" 3
    assert_equal "$(attempts_of q "$held")" 2
    assert_equal "$(last_error_reason q "$held")" lease
    assert_equal "$(ledger_starts "$held")" 1
    check_invariants q "$D/ids" 0
}

# crash_after_round POINT: a worker of one slot runs its first job, then sends its success in
# the claim of the next job (one round: README, "One round") and dies at POINT, after the
# round's reply: before the success's callback ran (after-round-reply) or after it, before the
# claimed job started (after-round-settled).
crash_after_round() {
    enqueue_jobs q 3
    local first second
    first=$(sed -n 1p "$D/ids")
    second=$(sed -n 2p "$D/ids")
    WORKQ_CRASH_AT=$1 start_worker a --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_exit "$LAST_PID" 15
    assert_equal "$EXIT_CODE" 137
    # The round settled the first job (once) and claimed the second, which never started.
    assert_raw_state q "$first" succeeded
    assert_equal "$(meta_field q succeeded)" 1
    assert_raw_state q "$second" running
    assert_equal "$(wc -l <"$FAULT_LEDGER")" 2  # the first job's start and end
    start_worker b --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 20 all_settled q
    assert_equal "$(count_in_state q succeeded)" 3
    assert_equal "$(meta_field q succeeded)" 3
    assert_equal "$(ledger_runs "$first")" 1
    # The claimed job came back after its lease, its lost attempt counted.
    assert_equal "$(attempts_of q "$second")" 2
    assert_equal "$(last_error_reason q "$second")" lease
    assert_equal "$(ledger_starts "$second")" 1
    check_invariants q "$D/ids" 0
}

@test "kill -9 after a round's reply, before its successes' callbacks: recorded once; the claimed job comes back after the lease" {
    crash_after_round after-round-reply
}

@test "kill -9 after a round's successes were taken, before its claimed job starts: nothing lost, nothing run twice" {
    crash_after_round after-round-settled
}

@test "kill -9 while jobs are claimed ahead: they come back after the lease, uncounted, and run (--max-attempts 1 too)" {
    enqueue_jobs q 4 --max-attempts 1
    # -c 1 --claim-ahead 1: the first claim starts one job and holds one ahead; the worker dies
    # as it holds it.
    WORKQ_CRASH_AT=holding-ahead start_worker a -c 1 --claim-ahead 1 --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_exit "$LAST_PID" 15
    assert_equal "$EXIT_CODE" 137
    local id started="" held=""
    for id in $(rcli zrange "{$WORKQ_NAMESPACE:q}:running" 0 -1); do
        if [ "$(job_field q "$id" ahead)" = 1 ]; then held=$id; else started=$id; fi
    done
    [ -n "$started" ] && [ -n "$held" ] || fail "expected one started and one held job"
    assert_equal "$(job_field q "$held" attempts)" ""
    start_worker b --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 20 all_settled q
    # The held job ran, on its first (and only) attempt, with no error recorded.
    assert_equal "$(job_field q "$held" state)" succeeded
    assert_equal "$(attempts_of q "$held")" 1
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:q}:errors:$held")" 0
    assert_equal "$(ledger_runs "$held")" 1
    # The started one's lapse counted: with one attempt allowed, it is dead (reason lease).
    assert_equal "$(job_field q "$started" state)" dead
    assert_equal "$(last_error_reason q "$started")" lease
    assert_equal "$(count_in_state q succeeded)" 3
    check_invariants q "$D/ids" 0
}

@test "kill -9 after a job claimed ahead went to its handler, before the start notice: that run is not counted" {
    enqueue_jobs q 3 --max-attempts 2
    # -c 1 --claim-ahead 1: the second job is held while the first runs; when the first ends,
    # the second goes to the handler and the worker dies before its start notice is sent.
    WORKQ_CRASH_AT=before-start-notice start_worker a -c 1 --claim-ahead 1 --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_exit "$LAST_PID" 15
    assert_equal "$EXIT_CODE" 137
    # The job handed to its handler is still marked ahead. (The round that carried the first
    # job's success may have claimed the third ahead too: marked, but never handed to a
    # handler. The handler may not have written its ledger line before its group was killed,
    # so which of them it was is not asked: the claim is about every marked one.)
    local id marked=()
    for id in $(rcli zrange "{$WORKQ_NAMESPACE:q}:running" 0 -1); do
        if [ "$(job_field q "$id" ahead)" = 1 ]; then marked+=("$id"); fi
    done
    [ "${#marked[@]}" -ge 1 ] || fail "expected the job handed to its handler still marked ahead"
    for id in "${marked[@]}"; do assert_equal "$(job_field q "$id" attempts)" ""; done
    start_worker b --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 20 all_settled q
    assert_equal "$(count_in_state q succeeded)" 3
    # The killed run is not counted: each marked job succeeded on what the server counts as
    # attempt 1, though the one handed to its handler may have run twice.
    for id in "${marked[@]}"; do
        assert_equal "$(attempts_of q "$id")" 1
        [ "$(ledger_starts "$id")" -ge 1 ] || fail "job $id never ran"
    done
    # Duplicates: the first job's success may not have reached the server before the kill, and
    # the killed run of this one may reach its end (the handler is a few lines of sh) before its
    # group is killed: at most two.
    check_invariants q "$D/ids" 2
}

@test "kill -9 mid-handler, two slots busy: both handler groups die, both jobs come back and succeed once" {
    enqueue_jobs q 4
    FAULT_SLEEP=1000 start_worker a -c 2 --lease 1s q -- "$HANDLERS/ledger.sh"
    local a=$LAST_PID
    wait_until 10 has_lines "$FAULT_PIDS" 2
    kill -9 "$a"
    local pid
    while read -r pid; do wait_until 5 group_gone "$pid"; done <"$FAULT_PIDS"
    start_worker b -c 2 --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 20 all_settled q
    assert_equal "$(count_in_state q succeeded)" 4
    local id
    for id in $(awk '$1 == "start" && $3 == 1 { print $2 }' "$FAULT_LEDGER" | head -2); do
        assert_equal "$(attempts_of q "$id")" 2
        assert_equal "$(ledger_runs "$id")" 1
    done
    check_invariants q "$D/ids" 0
}

@test "kill -9 after the handler succeeded, before the settle: the documented duplicate; the job ends succeeded, counted once" {
    enqueue_jobs q 1
    local id
    id=$(cat "$D/ids")
    WORKQ_CRASH_AT=before-settle start_worker a --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_exit "$LAST_PID" 15
    assert_equal "$EXIT_CODE" 137
    # The handler's work was done; the server never heard of it.
    assert_equal "$(ledger_runs "$id")" 1
    assert_raw_state q "$id" running
    start_worker b --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 20 state_is q "$id" succeeded
    assert_equal "$(ledger_runs "$id")" 2
    assert_equal "$(attempts_of q "$id")" 2
    assert_equal "$(meta_field q succeeded)" 1
    # One kill x one slot: at most one duplicate.
    check_invariants q "$D/ids" 1
}

@test "kill -9 inside the reaper, right after it took a job back: the job is waiting, not lost, and runs" {
    enqueue_jobs q 1
    local id
    id=$(cat "$D/ids")
    FAULT_SLEEP=1000 start_worker a --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 10 has_lines "$FAULT_PIDS" 1
    kill -9 "$LAST_PID"
    # A worker that claims nothing (its health check fails) but reaps: it dies in its first
    # reaper pass (within about 4 s), right after the script took the lapsed lease back.
    WORKQ_CRASH_AT=in-reaper start_worker r --lease 1s --health-cmd false q -- "$HANDLERS/ledger.sh"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 137
    wait_until 5 state_is q "$id" waiting
    assert_equal "$(last_error_reason q "$id")" lease
    start_worker b --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 15 state_is q "$id" succeeded
    assert_equal "$(attempts_of q "$id")" 2
    check_invariants q "$D/ids" 0
}

@test "a thousand leases lapsed at once come back in one reaper pass (in batches), not 200 per pass" {
    enqueue_jobs q 1000
    # One claim of 1000 jobs, then the worker dies before it starts a handler.
    WORKQ_CRASH_AT=after-claim start_worker a -c 1000 --lease 500ms q -- "$HANDLERS/ledger.sh"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 137
    wait_until 10 eval '[ "$(rcli eval "local t = redis.call('"'TIME'"')
        return redis.call('"'ZCOUNT'"', KEYS[1], '"'-inf'"', t[1] * 1000)" 1 "{$WORKQ_NAMESPACE:q}:running")" -eq 1000 ]'
    # A worker that claims nothing (its health check fails) but reaps: one pass brings back all.
    start_worker r --lease 1s --health-cmd false q -- "$HANDLERS/ledger.sh"
    wait_until 20 log_has r "took back 1000 job(s) whose lease lapsed"
    assert_equal "$(rcli zcard "{$WORKQ_NAMESPACE:q}:running")" 0
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 1000
    assert_equal "$(wc -l <"$FAULT_LEDGER")" 0
    check_invariants q "$D/ids" 0
}

@test "a poison pill that kills every worker taking it: dead after max attempts; the other jobs keep flowing" {
    WORKQ_REDIS_URL=$DIRECT_URL workq-enqueue --max-attempts 2 q poison >>"$D/ids"
    local poison
    poison=$(cat "$D/ids")
    enqueue_jobs q 10
    supervise w 2 --lease 1s q -- "$HANDLERS/poison.sh"
    wait_until 40 state_is q "$poison" dead
    wait_until 20 all_settled q
    assert_equal "$(count_in_state q succeeded)" 10
    assert_equal "$(attempts_of q "$poison")" 2
    assert_equal "$(error_count q "$poison")" 2
    assert_equal "$(last_error_reason q "$poison")" lease
    assert_equal "$(ledger_starts "$poison")" 2
    # Two workers died, one per attempt; the supervisor started one more for each.
    assert_equal "$(wc -l <"$D/w.all")" 4
    stop_supervisors
    check_invariants q "$D/ids" 2
}

@test "SIGTERM with handlers that ignore TERM and fork a grandchild: the groups are killed at the budget, the jobs released at once, uncounted" {
    enqueue_jobs q 2
    start_worker w -c 2 --lease 1s --shutdown-timeout 1500ms --kill-grace 500ms q -- \
        "$HANDLERS/ignore_term.sh"
    local w=$LAST_PID
    wait_until 10 has_lines "$FAULT_PIDS" 4
    kill -TERM "$w"
    wait_exit "$w" 10
    assert_equal "$EXIT_CODE" 0
    local pid id
    while read -r pid; do wait_until 5 group_gone "$pid"; done <"$FAULT_PIDS"
    # Released when the worker exits, not a lease later; the attempt not counted.
    while read -r id; do
        assert_raw_state q "$id" waiting
        assert_equal "$(attempts_of q "$id")" 0
    done <"$D/ids"
    check_invariants q "$D/ids" 0
    start_worker b --burst q -- "$HANDLERS/ledger.sh"
    wait_exit "$LAST_PID" 15
    assert_equal "$(count_in_state q succeeded)" 2
    check_invariants q "$D/ids" 0
}

@test "SIGTERM while Redis is blackholed: the worker exits within a bounded time; the job is recovered later" {
    enqueue_jobs q 1
    local id
    id=$(cat "$D/ids")
    start_worker w --lease 1s --shutdown-timeout 2s --kill-grace 500ms q -- "$HANDLERS/sleeper.sh"
    local w=$LAST_PID
    wait_until 10 has_lines "$FAULT_PIDS" 1
    proxy_ctl blackhole
    kill -TERM "$w"
    # The budget (2 s), then at most 5 s to report and 2 s to unregister: bounded, not hung.
    wait_exit "$w" 15
    assert_equal "$EXIT_CODE" 0
    assert_log w "could not report every outcome in time"
    wait_until 5 group_gone "$(cat "$FAULT_PIDS")"
    proxy_ctl pass
    # Its release never arrived: the lease lapses and another worker takes the job.
    start_worker b --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_until 20 state_is q "$id" succeeded
    assert_equal "$(ledger_runs "$id")" 1
    check_invariants q "$D/ids" 0
}
