#!/usr/bin/env bats
# The worker's breaker (CONTRACT.md section 12, issue 20): after --pause-after-failures N failed
# jobs in a row the worker is `paused` with the reason (logs, registry, workq-status), claims
# nothing for --failure-cooldown, consults --health-cmd, resumes; each trip before a success
# doubles the cooldown. SIGHUP changes both settings. Bad values are usage errors.

load work_helpers

setup() { work_setup; }
teardown() { work_teardown; }

# waiting QUEUE: the queue's waiting count, as workq-status reports it.
waiting() { workq-status --json "$1" | jq -r ".queues[] | select(.name == \"$1\") | .waiting"; }
waiting_is() { [ "$(waiting "$1")" = "$2" ]; }
dead_is() { [ "$(workq-status --json "$1" | jq -r ".queues[] | select(.name == \"$1\") | .dead")" = "$2" ]; }
# trips NAME: how many times the worker's breaker tripped, from its log.
trips() { grep -c 'breaker tripped' "$D/$1.log" || true; }
trips_are() { [ "$(trips "$1")" -ge "$2" ]; }
# "job claimed" is at debug: the workers these count are started with --log-level debug.
claims() { grep -c 'job claimed' "$D/$1.log" || true; }
# claimed_between NAME FIRST SECOND: "job claimed" lines after the first line holding FIRST and
# before the next one holding SECOND (fixed strings) in the worker's log.
claimed_between() {
    awk -v a="$2" -v b="$3" 'index($0, a) && !on {on = 1; next} on && index($0, b) {exit}
        on && /job claimed/ {n++} END {print n + 0}' "$D/$1.log"
}

@test "--pause-after-failures 3: paused with the reason, claims nothing during the cooldown, resumes, trips again with a doubled cooldown" {
    workq-enqueue --max-attempts 1 q $(seq 1 20) >/dev/null
    start_worker w --log-level debug --name brk --pause-after-failures 3 --failure-cooldown 3s q -- false
    local w=$LAST_PID
    wait_until 20 worker_field_is "$w" state paused
    assert_log w "breaker tripped: 3 jobs failed in a row (--pause-after-failures 3): claiming nothing for 3s"
    [[ "$(worker_field "$w" reason)" == "3 jobs failed in a row"* ]] ||
        fail "reason: $(worker_field "$w" reason)"
    # The queue's waiting count does not move while paused.
    assert_equal "$(waiting q)" 17
    # workq-status says why, in the table and in --json.
    run --separate-stderr workq-status
    assert_success
    assert_output --partial "worker brk paused: 3 jobs failed in a row"
    run --separate-stderr workq-status --json
    [[ "$(jq -r '.workers[] | select(.name == "brk") | .reason' <<<"$output")" == "3 jobs failed in a row"* ]] ||
        fail "json: $output"
    # The cooldown ends, it resumes, three more fail, and it trips again for twice as long.
    wait_until 30 trips_are w 2
    assert_log w "breaker: cooldown over; resuming"
    assert_log w "claiming nothing for 6s (trip 2 before a success)"
    assert_equal "$(claimed_between w 'breaker tripped' 'cooldown over')" 0
    assert_log w "state paused -> running"
    wait_until 10 worker_field_is "$w" state paused
    assert_equal "$(waiting q)" 14
    assert_equal "$(claims w)" 6
    [[ "$(worker_field "$w" reason)" == *"claiming nothing for 6s"* ]]
    assert_no_stdout w
}

@test "a success resets the count: failures that are not in a row never trip it" {
    # Odd payloads fail, even ones succeed: never two failures in a row.
    workq-enqueue --max-attempts 1 q $(seq 1 10) >/dev/null
    start_worker w --pause-after-failures 2 --failure-cooldown 1h q -- sh -c '[ $(($(cat) % 2)) = 0 ]'
    local w=$LAST_PID
    wait_until 20 dead_is q 5
    wait_until 10 waiting_is q 0
    assert_equal "$(trips w)" 0
    assert_equal "$(worker_field "$w" state)" running
    assert_equal "$(worker_field "$w" reason)" ""
}

@test "a failing --health-cmd after the cooldown keeps it paused; it resumes when the check passes" {
    # Each job breaks the dependency (the health check fails from then on) and fails.
    local h
    h=$(make_handler h <<'EOF'
touch "$D/sick"
exit 1
EOF
)
    export D
    workq-enqueue --max-attempts 1 q $(seq 1 6) >/dev/null
    start_worker w --log-level debug --pause-after-failures 2 --failure-cooldown 300ms \
        --health-cmd "test ! -e $D/sick" --health-interval 1h q -- "$h"
    local w=$LAST_PID
    wait_until 20 worker_field_is "$w" state paused
    assert_log w "then until --health-cmd passes"
    # Checked, failed, checked again, failed again: still paused, nothing claimed.
    wait_until 20 eval '[ "$(grep -c "cooldown over but the health check fails" "$D/w.log")" -ge 2 ]'
    assert_equal "$(worker_field "$w" state)" paused
    [[ "$(worker_field "$w" reason)" == "the breaker tripped and the health check fails"* ]] ||
        fail "reason: $(worker_field "$w" reason)"
    assert_equal "$(waiting q)" 4
    assert_equal "$(claims w)" 2
    rm "$D/sick"
    wait_until 20 log_has w "breaker: cooldown over and the health check passed; resuming"
    wait_until 20 trips_are w 2
    assert_equal "$(claims w)" 4
}

@test "SIGHUP changes the breaker: 0 turns it off and ends its pause" {
    printf '[work]\npause-after-failures = 1\nfailure-cooldown = "1h"\n' >"$D/config.toml"
    workq-enqueue --max-attempts 1 q $(seq 1 4) >/dev/null
    start_worker w --config "$D/config.toml" q -- false
    local w=$LAST_PID
    wait_until 20 worker_field_is "$w" state paused
    assert_log w "claiming nothing for 1h"
    assert_equal "$(waiting q)" 3
    printf '[work]\npause-after-failures = 0\n' >"$D/config.toml"
    kill -HUP "$w"
    wait_until 10 log_has w "pause-after-failures 1 -> 0"
    assert_log w "failure-cooldown 1h -> 30s"
    assert_log w "the breaker is off; its pause ends"
    wait_until 20 waiting_is q 0
    assert_equal "$(trips w)" 1
}

@test "bad --pause-after-failures and --failure-cooldown are usage errors (exit 2)" {
    run --separate-stderr workq-work --pause-after-failures -1 q -- true
    assert_equal "$status" 2
    assert_regex "$stderr" "--pause-after-failures"
    run --separate-stderr workq-work --pause-after-failures x q -- true
    assert_equal "$status" 2
    assert_regex "$stderr" "--pause-after-failures"
    run --separate-stderr workq-work --failure-cooldown 10ms q -- true
    assert_equal "$status" 2
    assert_regex "$stderr" "--failure-cooldown: must be at least 100ms"
    run --separate-stderr workq-work --failure-cooldown soon q -- true
    assert_equal "$status" 2
    assert_regex "$stderr" "--failure-cooldown"
}
