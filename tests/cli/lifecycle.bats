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

# ---- a burst waits for the retries of the jobs it ran ---------------------------------------

@test "a --burst waits for the retry of a job it ran (sleeping until it is due), not for other scheduled jobs" {
    id=$(workq-enqueue q x)
    later=$(workq-enqueue --delay 1h q later)
    start_worker b --burst --backoff 1s q -- sh -c 'cat >/dev/null; [ "$WORKQ_ATTEMPT" -ge 2 ]'
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$id" succeeded
    assert_equal "$(job_field q "$id" attempts)" 2
    assert_log b "1 job(s) it ran wait for a retry"
    # Not one of its own: left for its time.
    assert_raw_state q "$later" scheduled
}

@test "a --burst whose job fails again until it is dead exits 1" {
    id=$(workq-enqueue --max-attempts 3 q x)
    start_worker b --burst --backoff 200ms q -- sh -c 'cat >/dev/null; exit 3'
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 1
    assert_raw_state q "$id" dead
    assert_equal "$(job_field q "$id" attempts)" 3
}

@test "--max-runtime bounds a --burst that waits for a retry: exit 0, the job stays scheduled" {
    id=$(workq-enqueue q x)
    start_worker b --burst --backoff 1h --max-runtime 1s q -- sh -c 'cat >/dev/null; exit 3'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$id" scheduled
    assert_log b "--max-runtime reached"
}

@test "a retry the burst waits for and a user cancels: the burst ends when it would have been due" {
    id=$(workq-enqueue q x)
    start_worker b --burst --backoff 2s q -- sh -c 'cat >/dev/null; exit 3'
    wait_until 10 state_is q "$id" scheduled
    workq-queue cancel "$id" >/dev/null
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$id" cancelled
    assert_equal "$(job_field q "$id" attempts)" 1
}

# ---- hooks, signals, settings -----------------------------------------------------------------

@test "--on-stop runs when the worker ends in error (COMMAND vanished mid-run), not after a failed --on-start" {
    printf '#!/bin/sh\nexit 0\n' >"$D/cmd"
    chmod +x "$D/cmd"
    start_worker w --on-stop "echo stopped >>$D/hooks" q -- "$D/cmd"
    wait_until 10 worker_field_is "$LAST_PID" state running
    chmod -x "$D/cmd"
    workq-enqueue q x >/dev/null
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 4
    assert_equal "$(cat "$D/hooks")" stopped
    # --on-start failed: what --on-stop would undo never happened.
    rm "$D/hooks"
    start_worker s --on-start false --on-stop "echo stopped >>$D/hooks" q -- true
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 4
    [ ! -e "$D/hooks" ] || fail "--on-stop ran after --on-start failed"
}

@test "SIGUSR1 during a job reloads like SIGHUP (no death, no drain); SIGUSR2 is logged and ignored" {
    printf '[work]\nconcurrency = 1\n' >"$D/config.toml"
    h=$(first_attempt_blocks)
    export D
    id=$(workq-enqueue q x)
    start_worker w --config "$D/config.toml" q -- "$h"
    w=$LAST_PID
    wait_until 10 has_lines "$D/handler.pid" 1
    printf '[work]\nconcurrency = 2\n' >"$D/config.toml"
    kill -USR1 "$w"
    wait_until 10 worker_field_is "$w" concurrency 2
    assert_log w "SIGUSR1: reloaded the config"
    kill -USR2 "$w"
    wait_until 10 log_has w "SIGUSR2: means nothing to workq-work; ignored"
    alive "$w"
    assert_equal "$(worker_field "$w" state)" running
    touch "$D/go"
    wait_until 10 state_is q "$id" succeeded
    assert_equal "$(job_field q "$id" attempts)" 1
    kill -TERM "$w"
    wait_exit "$w" 15
    assert_equal "$EXIT_CODE" 0
}

@test "--shutdown-timeout at or below --kill-grace is a warning at start and on reload" {
    start_worker w --shutdown-timeout 2s --kill-grace 3s q -- cat
    w=$LAST_PID
    wait_until 10 worker_field_is "$w" state running
    assert_log w "--shutdown-timeout 2s is not longer than --kill-grace 3s"
    start_worker ok --shutdown-timeout 10s --kill-grace 3s q -- cat
    wait_until 10 worker_field_is "$LAST_PID" state running
    ! log_has ok "is not longer than" || fail "a sound budget was warned about"
    # Reloaded from a file that makes it so.
    printf '[work]\nshutdown-timeout = "1s"\n' >"$D/config.toml"
    start_worker r --config "$D/config.toml" --kill-grace 500ms q -- cat
    r=$LAST_PID
    wait_until 10 worker_field_is "$r" state running
    ! log_has r "is not longer than" || fail "warned before the reload"
    printf '[work]\nshutdown-timeout = "500ms"\n' >"$D/config.toml"
    kill -HUP "$r"
    wait_until 10 log_has r "--shutdown-timeout 500ms is not longer than --kill-grace 500ms"
}

@test "-q hides the worker's own lines but still relays the handler's stderr; --log-level error hides both" {
    workq-enqueue q x >/dev/null
    start_worker quiet -q --burst q -- sh -c 'echo "handler says hello" >&2'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_log quiet "handler says hello"
    ! log_has quiet "info:" || fail "-q printed info lines: $(cat "$D/quiet.log")"
    workq-enqueue q y >/dev/null
    start_worker silent --log-level error --burst q -- sh -c 'echo "handler says hello" >&2'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    [ ! -s "$D/silent.log" ] || fail "--log-level error printed: $(cat "$D/silent.log")"
}

# ---- the registry after the end ------------------------------------------------------------

# server_ms: the test server's clock, in milliseconds.
server_ms() { rcli eval "local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)" 0; }

@test "a worker that exited in error stays in the registry: --check --worker is CRITICAL naming why; workq-status shows it" {
    printf '#!/bin/sh\nexit 0\n' >"$D/cmd"
    chmod +x "$D/cmd"
    start_worker w --name werr q -- "$D/cmd"
    wait_until 10 worker_field_is "$LAST_PID" state running
    chmod -x "$D/cmd"
    workq-enqueue q x >/dev/null
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 4
    run --separate-stderr workq-status --check --worker werr
    assert_equal "$status" 2
    assert_output --regexp "^WORKQ CRITICAL: worker werr exited in error [0-9.]+(ms|s) ago: cannot execute COMMAND"
    run --separate-stderr workq-status --json
    assert_success
    assert_equal "$(jq -r '.exited_workers[] | select(.name == "werr") | "\(.state) \(.live) \(.stopped_at != null)"' <<<"$output")" "error false true"
    [[ "$(jq -r '.exited_workers[] | select(.name == "werr") | .reason' <<<"$output")" == "cannot execute COMMAND"* ]]
    # Not among the registered workers (they are the ones that may still run).
    assert_equal "$(jq '.workers | length' <<<"$output")" 0
    run --separate-stderr workq-status
    assert_output --partial "exited (kept an hour after a clean stop, a day after an error):"
    assert_regex "$(grep ' werr ' <<<"$output")" " error .*cannot execute COMMAND"
    # A clean stop is kept too, with its reason; a running worker of the same name wins.
    start_worker b --burst --name wok q -- cat
    wait_exit "$LAST_PID" 20
    run --separate-stderr workq-status --check --worker wok
    assert_equal "$status" 2
    assert_output --partial "worker wok stopped"
    assert_output --partial "(--burst: no job is due)"
    start_worker again --name wok q -- cat
    wait_until 10 worker_field_is "$LAST_PID" state running
    run --separate-stderr workq-status --check --worker wok
    [ "$status" -le 1 ] || fail "$output"
    run workq-status --prometheus
    assert_line "workq_workers{namespace=\"$WORKQ_NAMESPACE\",liveness=\"exited\"} 2"
}

@test "a killed worker shows the state lost and an uptime frozen at its last heartbeat" {
    start_worker w --name victim q -- cat
    w=$LAST_PID
    wait_until 10 worker_field_is "$w" state running
    id=$(worker_id_of "$w")
    kill -9 "$w"
    wait_until 5 process_gone "$w"
    # Its registration aged: started 60 s ago, last heartbeat 20 s ago (lost: over 15 s).
    now=$(server_ms)
    rcli hset "{$WORKQ_NAMESPACE}:worker:$id" started_at $((now - 60000)) last_heartbeat $((now - 20000)) >/dev/null
    run --separate-stderr workq-status --json
    assert_equal "$(jq -r --arg id "$id" '.workers[] | select(.id == $id) | "\(.state) \(.live) \(.uptime_s)"' <<<"$output")" "lost false 40"
    run --separate-stderr workq-status
    assert_regex "$(grep " victim " <<<"$output" | tr -s ' ')" "^$id victim .* lost q 0/1 0 0 40s .* LOST$"
}

@test "a summary line every --summary-interval (processed, failed, busy, state) and a final one at exit" {
    workq-enqueue q a >/dev/null
    workq-enqueue --max-attempts 1 q bad >/dev/null
    start_worker w --summary-interval 200ms q -- sh -c '[ "$(cat)" != bad ]'
    w=$LAST_PID
    wait_until 20 eval '[ "$(grep -c "info: summary: processed 2, succeeded 1, failed 1, dead 1, released 0" "$D/w.log")" -ge 2 ]'
    assert_log w "busy 0/1; state running"
    assert_log w "(0 in the last 200ms)"
    kill -TERM "$w"
    wait_exit "$w" 15
    assert_equal "$EXIT_CODE" 0
    assert_regex "$(tail -1 "$D/w.log")" "info: final summary: processed 2, succeeded 1, failed 1, dead 1, released 0 in [0-9.]+(ms|s|m[0-9]+s); exit 0 "
    # --summary-interval 0: only the final one.
    start_worker quiet --summary-interval 0 --max-runtime 1s q -- cat
    wait_exit "$LAST_PID" 15
    ! log_has quiet "info: summary:" || fail "a periodic summary with --summary-interval 0"
    assert_log quiet "final summary: processed 0"
}

# ---- settings from the environment ----------------------------------------------------------

@test "WORKQ_<TOOL>_<KEY> sets any key of a tool's table: below the command line, above the config file" {
    # workq-work: WORKQ_WORK_CONCURRENCY read; the flag beats it; it beats the file.
    WORKQ_WORK_CONCURRENCY=3 start_worker env q -- cat
    wait_until 10 worker_field_is "$LAST_PID" concurrency 3
    WORKQ_WORK_CONCURRENCY=3 start_worker flag -c 2 q -- cat
    wait_until 10 worker_field_is "$LAST_PID" concurrency 2
    printf '[work]\nconcurrency = 4\n' >"$D/config.toml"
    WORKQ_WORK_CONCURRENCY=3 start_worker file --config "$D/config.toml" q -- cat
    wait_until 10 worker_field_is "$LAST_PID" concurrency 3
    # A duration, with a dash in its key.
    WORKQ_WORK_SHUTDOWN_TIMEOUT=1s start_worker dur --kill-grace 2s q -- cat
    wait_until 10 log_has dur "--shutdown-timeout 1s is not longer than --kill-grace 2s"
    # A flag: true/false or 1/0.
    run --separate-stderr env WORKQ_WORK_BURST=1 workq-work q -- cat
    assert_success
    # workq-enqueue: WORKQ_ENQUEUE_MAX_ATTEMPTS; the flag beats it.
    id=$(WORKQ_ENQUEUE_MAX_ATTEMPTS=3 workq-enqueue q x)
    assert_equal "$(job_field q "$id" max)" 3
    id=$(WORKQ_ENQUEUE_MAX_ATTEMPTS=3 workq-enqueue --max-attempts 5 q y)
    assert_equal "$(job_field q "$id" max)" 5
    # workq-status: a flag of its table.
    run --separate-stderr env WORKQ_STATUS_JSON=true workq-status
    assert_success
    jq -e .queues <<<"$output" >/dev/null
    # Empty: unset.
    run --separate-stderr env WORKQ_ENQUEUE_MAX_ATTEMPTS= workq-enqueue q z
    assert_success
}

@test "a bad WORKQ_<TOOL>_<KEY> value is exit 2 naming the variable; an unknown one is a warning" {
    run --separate-stderr env WORKQ_WORK_CONCURRENCY=lots workq-work q -- cat
    assert_failure 2
    [[ "$stderr" == *"WORKQ_WORK_CONCURRENCY"* ]] || fail "$stderr"
    run --separate-stderr env WORKQ_WORK_BURST=maybe workq-work q -- cat
    assert_failure 2
    [[ "$stderr" == *"WORKQ_WORK_BURST: must be true or false"* ]] || fail "$stderr"
    run --separate-stderr env WORKQ_ENQUEUE_MAX_ATEMPTS=3 workq-enqueue q x
    assert_success
    [[ "$stderr" == *"unknown variable WORKQ_ENQUEUE_MAX_ATEMPTS"* ]] || fail "$stderr"
    run --separate-stderr env WORKQ_ENQUEUE_NAMESPACE=other workq-enqueue q x
    assert_success
    [[ "$stderr" == *"WORKQ_ENQUEUE_NAMESPACE is not read"* ]] || fail "$stderr"
}

@test "a reload says what changed and which settings the command line or environment pins" {
    printf '[work]\nconcurrency = 3\ntimeout = "1m"\n' >"$D/config.toml"
    WORKQ_WORK_LEASE=20s start_worker w -c 2 --config "$D/config.toml" q -- cat
    w=$LAST_PID
    wait_until 10 worker_field_is "$w" state running
    printf '[work]\nconcurrency = 5\ntimeout = "2m"\nlease = "1m"\n' >"$D/config.toml"
    kill -HUP "$w"
    wait_until 10 log_has w "SIGHUP: reloaded the config:"
    assert_log w "SIGHUP: reloaded the config: timeout 1m -> 2m; kept, as the command line or environment sets them: concurrency 2 (by --concurrency), lease 20s (by WORKQ_WORK_LEASE)"
    assert_equal "$(worker_field "$w" concurrency)" 2
    kill -HUP "$w"
    wait_until 10 log_has w "SIGHUP: reloaded the config: nothing changed"
}
