#!/usr/bin/env bats
# workq-work --claim-ahead (issue 16, item 2): jobs held leased beyond the busy slots. Every job
# runs once, strict priority between queues holds, a drain gives the held jobs back uncounted
# (another worker runs them), so do SIGTSTP and the end of --max-jobs (which counts jobs started),
# workq-status and workq-queue ls show them apart from running jobs, a cancel ends one unrun,
# bad values are refused. (kill -9 while jobs are held ahead: tests/fault/crashes.bats.)

load work_helpers

setup_file() { workq_test_setup_file; }
teardown_file() { workq_test_teardown_file; }

setup() { work_setup; }
teardown() { work_teardown; }

# ahead_ids QUEUE: the ids of the queue's running jobs marked as claimed ahead.
ahead_ids() {
    local id
    for id in $(rcli zrange "{$WORKQ_NAMESPACE:$1}:running" 0 -1); do
        [ "$(job_field "$1" "$id" ahead)" = 1 ] && echo "$id"
    done
    return 0
}

ahead_count_is() { [ "$(ahead_ids "$1" | wc -l)" -eq "$2" ]; }

# hold_one_ahead JOBS [WORKER OPTION...]: JOBS jobs on q, and worker a at -c 1 --claim-ahead 1
# with a handler ($GATED) that writes "id attempt" to $D/ledger and waits for $D/go; returns
# once one job runs and one is held. HELD is the held job's id; LAST_PID the worker.
hold_one_ahead() {
    seq "$1" | workq-enqueue q >"$D/ids"
    shift
    GATED=$(make_handler h <<'EOF'
echo "$WORKQ_JOB_ID $WORKQ_ATTEMPT" >>"$D/ledger"
while [ ! -e "$D/go" ]; do sleep 0.05; done
EOF
)
    export D
    start_worker a -c 1 --claim-ahead 1 "$@" q -- "$GATED"
    wait_until 20 has_lines "$D/ledger" 1
    wait_until 20 ahead_count_is q 1
    HELD=$(ahead_ids q)
}

@test "--claim-ahead: a value outside 0..concurrency, or not a number, is a usage error (exit 2)" {
    run workq-work --claim-ahead 2 -c 1 q -- true
    assert_equal "$status" 2
    [[ "$output" == *"--claim-ahead: 2 is not from 0 (off) to the concurrency, 1"* ]] || fail "$output"
    run workq-work --claim-ahead -1 -c 4 q -- true
    assert_equal "$status" 2
    [[ "$output" == *"--claim-ahead"* ]] || fail "$output"
    run workq-work --claim-ahead many q -- true
    assert_equal "$status" 2
    [[ "$output" == *"--claim-ahead"* ]] || fail "$output"
}

@test "--claim-ahead 1 at -c 1: every job runs once, on its first attempt, earlier queue first" {
    seq 5 | sed 's/^/low-/' | workq-enqueue low >"$D/ids"
    seq 5 | sed 's/^/high-/' | workq-enqueue high >>"$D/ids"
    local h
    h=$(make_handler h <<'EOF'
echo "$(cat) $WORKQ_ATTEMPT" >>"$D/ledger"
EOF
)
    export D
    start_worker w --burst -c 1 --claim-ahead 1 high,low -- "$h"
    wait_exit "$LAST_PID" 60
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(wc -l <"$D/ledger")" 10
    assert_equal "$(cut -d' ' -f1 "$D/ledger" | tr '\n' ' ')" \
        "high-1 high-2 high-3 high-4 high-5 low-1 low-2 low-3 low-4 low-5 "
    assert_equal "$(cut -d' ' -f2 "$D/ledger" | sort -u)" 1
    assert_equal "$(meta_field high succeeded)" 5
    assert_equal "$(meta_field low succeeded)" 5
    local id
    for id in $(cat "$D/ids"); do
        # Counted once, in whichever queue holds it.
        assert_equal "$(job_field high "$id" attempts)$(job_field low "$id" attempts)" 1
    done
}

@test "--persistent -c 1 --claim-ahead 1: every job runs once, counted once" {
    seq 20 | workq-enqueue q >"$D/ids"
    cat >"$D/handler.py" <<'PY'
#!/usr/bin/env python3
import json, sys
for line in sys.stdin:
    request = json.loads(line)
    print(json.dumps({"id": request["id"], "ok": True, "result": "%s" % request["attempt"]}), flush=True)
PY
    chmod +x "$D/handler.py"
    start_worker w --burst --persistent -c 1 --claim-ahead 1 q -- "$D/handler.py"
    wait_exit "$LAST_PID" 60
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(meta_field q succeeded)" 20
    local id
    while read -r id; do
        assert_raw_state q "$id" succeeded
        assert_equal "$(job_field q "$id" attempts)" 1
        assert_equal "$(job_field q "$id" result)" 1
    done <"$D/ids"
}

@test "--claim-ahead: status and ls show a held job apart; a drain gives it back uncounted and another worker runs it" {
    hold_one_ahead 3 --lease 30s
    local a=$LAST_PID h=$GATED held=$HELD
    # Held, leased, not counted.
    assert_raw_state q "$held" running
    assert_equal "$(job_field q "$held" attempts)" ""
    # workq-status: one running, one claimed ahead (human, --json, --prometheus).
    local out
    out=$(workq-status q --json 2>/dev/null)
    assert_equal "$(jq -r '.queues[0] | "\(.running) \(.claimed_ahead) \(.waiting)"' <<<"$out")" "1 1 1"
    out=$(COLUMNS=200 workq-status q 2>/dev/null)
    [[ "$out" == *"1 +1 ahead"* ]] || fail "$out"
    run workq-status q --prometheus
    [[ "$output" == *"workq_queue_claimed_ahead{namespace=\"$WORKQ_NAMESPACE\",queue=\"q\"} 1"* ]] || fail "$output"
    [[ "$output" == *"workq_queue_running{namespace=\"$WORKQ_NAMESPACE\",queue=\"q\"} 1"* ]] || fail "$output"
    # workq-queue ls: marked, not plain "running".
    out=$(workq-queue ls q --state running --json 2>/dev/null)
    assert_equal "$(jq -r "select(.id == \"$held\") | .claimed_ahead" <<<"$out")" true
    run workq-queue ls q --state running
    [[ "$output" == *"running(ahead)"* ]] || fail "$output"

    # SIGTERM: the held job goes back at once, uncounted, while the running one finishes.
    kill -TERM "$a"
    wait_until 20 state_is q "$held" waiting
    assert_equal "$(job_field q "$held" attempts)" ""
    assert_equal "$(error_count q "$held")" 0
    alive "$a"
    touch "$D/go"
    wait_exit "$a" 30
    assert_equal "$EXIT_CODE" 0
    assert_log a "claimed ahead"

    start_worker b --burst q -- "$h"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(meta_field q succeeded)" 3
    assert_raw_state q "$held" succeeded
    assert_equal "$(job_field q "$held" attempts)" 1
    assert_equal "$(grep -c "^$held " "$D/ledger")" 1
}

@test "--claim-ahead: a user's cancel of a held job ends it cancelled without running it" {
    hold_one_ahead 2 --lease 1s
    local held=$HELD
    run workq-queue cancel "$held"
    assert_equal "$status" 0
    wait_until 20 state_is q "$held" cancelled
    touch "$D/go"
    kill -TERM "$LAST_PID"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(grep -c "^$held " "$D/ledger")" 0
}

@test "--claim-ahead: SIGTSTP gives the held job back at once, uncounted; SIGCONT claims again" {
    hold_one_ahead 3
    local a=$LAST_PID held=$HELD
    kill -TSTP "$a"
    wait_until 20 state_is q "$held" waiting
    assert_equal "$(job_field q "$held" attempts)" ""
    assert_equal "$(error_count q "$held")" 0
    kill -CONT "$a"
    touch "$D/go"
    wait_until 30 state_is q "$held" succeeded
    assert_equal "$(job_field q "$held" attempts)" 1
    kill -TERM "$a"
    wait_exit "$a" 30
    assert_equal "$EXIT_CODE" 0
}

@test "--claim-ahead with --max-jobs: counts jobs started, not those held; the held one goes back uncounted" {
    seq 5 | workq-enqueue q >"$D/ids"
    local h
    h=$(make_handler h <<'EOF'
echo "$WORKQ_JOB_ID" >>"$D/ledger"
EOF
)
    export D
    start_worker a -c 1 --claim-ahead 1 --max-jobs 2 q -- "$h"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(wc -l <"$D/ledger")" 2
    assert_equal "$(meta_field q succeeded)" 2
    local id waiting=0
    while read -r id; do
        if state_is q "$id" waiting; then
            waiting=$((waiting + 1))
            assert_equal "$(job_field q "$id" attempts)" ""
        fi
    done <"$D/ids"
    assert_equal "$waiting" 3
    assert_equal "$(rcli zcard "{$WORKQ_NAMESPACE:q}:running")" 0
}

@test "--burst -c 4 --claim-ahead 4: every job runs exactly once, at most 4 at a time, each counted once" {
    seq 40 | workq-enqueue q >"$D/ids"
    mkdir "$D/running"
    local h
    h=$(make_handler h <<'EOF'
: >"$D/running/$WORKQ_JOB_ID"
ls "$D/running" | wc -l >>"$D/concurrent"
echo "$WORKQ_JOB_ID $WORKQ_ATTEMPT" >>"$D/ledger"
rm "$D/running/$WORKQ_JOB_ID"
EOF
)
    export D
    start_worker w --burst -c 4 --claim-ahead 4 q -- "$h"
    wait_exit "$LAST_PID" 60
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(wc -l <"$D/ledger")" 40
    assert_equal "$(cut -d' ' -f1 "$D/ledger" | sort -u | wc -l)" 40
    assert_equal "$(cut -d' ' -f2 "$D/ledger" | sort -u)" 1
    assert_equal "$(meta_field q succeeded)" 40
    local most id
    most=$(sort -n "$D/concurrent" | tail -1)
    [ "$most" -le 4 ] || fail "$most handlers ran at once with -c 4"
    while read -r id; do
        assert_equal "$(job_field q "$id" attempts)" 1
    done <"$D/ids"
}
