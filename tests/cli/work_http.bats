#!/usr/bin/env bats
# `workq-work --http ADDR` (CONTRACT.md section 12, issue 20), with curl against a real worker:
# /livez, /readyz, /metrics (promtool-clean) and / in each state (starting, running, paused,
# draining); 404/405/400; loopback unless the address says otherwise; a client sending one byte
# a second delays no job; bad addresses are usage errors and a taken port stops the worker.

load work_helpers
load http_helpers

setup() { work_setup; }
teardown() { work_teardown; }

http_state_is() { [ "$(body / | jq -r .state)" = "$1" ]; }

# check_state STATE LIVEZ READYZ: what each endpoint says in STATE.
check_state() {
    local state=$1 livez=$2 readyz=$3
    wait_until 20 http_state_is "$state" || fail "not $state: $(body /)"
    assert_equal "$(status_of /livez)" "$livez"
    assert_equal "$(status_of /readyz)" "$readyz"
    body /metrics >"$D/metrics.$state"
    grep -qx "workq_worker_state{state=\"$state\"} 1" "$D/metrics.$state" ||
        fail "$(grep workq_worker_state "$D/metrics.$state")"
    [ "$(grep -c '^workq_worker_state{.*} 1$' "$D/metrics.$state")" = 1 ]
    promtool check metrics <"$D/metrics.$state" || fail "promtool: $(promtool check metrics <"$D/metrics.$state" 2>&1)"
}

@test "--http: /livez, /readyz, /metrics and / in the states starting, running, paused and draining" {
    need_promtool
    local h
    h=$(make_handler h <<'EOF'
[ "$(cat)" = block ] || exit 0
touch "$D/blocked"
while [ ! -e "$D/release" ]; do sleep 0.05; done
EOF
)
    export D
    start_http_worker w --name hw --on-start "while [ ! -e $D/go ]; do sleep 0.05; done" q -- "$h"
    local w=$LAST_PID

    check_state starting 200 503
    assert_equal "$(body /readyz)" starting
    touch "$D/go"

    check_state running 200 200
    workq-enqueue q block >/dev/null
    wait_until 20 test -e "$D/blocked"
    run body /
    assert_json "$output" '.name == "hw" and .busy == 1 and .concurrency == 1 and .queues == ["q"]'
    assert_json "$output" ".pid == $w and (.id | length > 0) and (.started_at | length > 0)"
    body /metrics >"$D/metrics"
    grep -qx 'workq_worker_busy_slots 1' "$D/metrics"
    grep -qx 'workq_worker_slots 1' "$D/metrics"
    run get /livez
    assert_line --index 0 'HTTP/1.1 200 OK'
    assert_line 'ok'

    kill -TSTP "$w"
    check_state paused 200 503
    assert_equal "$(body /readyz)" "paused: SIGTSTP: claiming nothing until SIGCONT"
    assert_json "$(body /)" '.reason == "SIGTSTP: claiming nothing until SIGCONT"'
    kill -CONT "$w"
    check_state running 200 200

    kill -TERM "$w"
    check_state draining 200 503
    assert_equal "$(body /readyz)" "draining: SIGTERM"
    touch "$D/release"
    wait_exit "$w" 20
    assert_equal "$EXIT_CODE" 0
    assert_no_stdout w
}

@test "--http: a worker paused by its breaker is live, not ready, and says why" {
    workq-enqueue --max-attempts 1 q 1 2 >/dev/null
    start_http_worker w --pause-after-failures 2 --failure-cooldown 1h q -- false
    wait_until 20 http_state_is paused
    assert_equal "$(status_of /livez)" 200
    assert_equal "$(status_of /readyz)" 503
    [[ "$(body /readyz)" == "paused: 2 jobs failed in a row"* ]] || fail "$(body /readyz)"
    body /metrics >"$D/metrics"
    grep -qx 'workq_worker_breaker_trips 1' "$D/metrics"
    grep -qx 'workq_worker_failures_in_a_row 2' "$D/metrics"
    # No limit on q: nothing was held back.
    grep -qx 'workq_worker_claims_held_back_total 0' "$D/metrics"
}

@test "--http: /metrics counts jobs by queue and outcome and times them per queue; promtool-clean" {
    need_promtool
    workq-enqueue q1 a b c >/dev/null
    workq-enqueue --max-attempts 1 q2 fail >/dev/null
    workq-enqueue --max-attempts 2 q2 fail >/dev/null
    start_http_worker w --backoff 1h q1,q2 -- sh -c '[ "$(cat)" != fail ]'
    wait_until 20 eval 'body /metrics | grep -qx "workq_worker_jobs_total{queue=\"q2\",outcome=\"failed\"} 1"'
    wait_until 20 eval 'body /metrics | grep -qx "workq_worker_jobs_total{queue=\"q2\",outcome=\"dead\"} 1"'
    body /metrics >"$D/metrics"
    promtool check metrics <"$D/metrics" || fail "$(promtool check metrics <"$D/metrics" 2>&1)"
    grep -qx 'workq_worker_jobs_total{queue="q1",outcome="succeeded"} 3' "$D/metrics"
    grep -qx 'workq_worker_jobs_total{queue="q1",outcome="dead"} 0' "$D/metrics"
    grep -qx 'workq_worker_jobs_total{queue="q2",outcome="succeeded"} 0' "$D/metrics"
    grep -qx 'workq_worker_job_duration_seconds_count{queue="q1"} 3' "$D/metrics"
    grep -qx 'workq_worker_job_duration_seconds_bucket{queue="q1",le="+Inf"} 3' "$D/metrics"
    grep -qx 'workq_worker_job_duration_seconds_count{queue="q2"} 2' "$D/metrics"
    grep -q '^# TYPE workq_worker_job_duration_seconds histogram$' "$D/metrics"
    grep -qx 'workq_worker_slots 1' "$D/metrics"
    grep -qx 'workq_worker_busy_slots 0' "$D/metrics"
    run get /metrics
    assert_line 'Content-Type: text/plain; version=0.0.4; charset=utf-8'
    # HEAD: the headers alone.
    run get /metrics -I
    assert_line --index 0 'HTTP/1.1 200 OK'
}

@test "--http: 404 for another path, 405 for another method, 400 for bytes that are not a request" {
    start_http_worker w q -- cat
    local path
    for path in /nope /metric /livez/ /READYZ '/%6civez'; do
        run get "$path"
        assert_line --index 0 'HTTP/1.1 404 Not Found'
    done
    local method
    for method in POST PUT DELETE; do
        run get /metrics -X "$method"
        assert_line --index 0 'HTTP/1.1 405 Method Not Allowed'
        assert_line 'Allow: GET, HEAD'
    done
    run raw 'garbage\r\n\r\n'
    assert_line --index 0 'HTTP/1.1 400 Bad Request'
    run raw 'GET livez HTTP/1.1\r\nHost: x\r\n\r\n'
    assert_line --index 0 'HTTP/1.1 400 Bad Request'
    # The worker goes on, and works.
    assert_equal "$(status_of /livez)" 200
    id=$(workq-enqueue q x)
    wait_until 20 state_is q "$id" succeeded
}

@test "--http: a client sending one byte a second delays no job and no other request" {
    start_http_worker w -c 2 q -- cat
    # The worker closes the slow client's connection after its 10 s request timeout.
    start_slow_client
    workq-enqueue q a b c d e >"$D/ids"
    local id
    while read -r id; do
        wait_until 20 state_is q "$id" succeeded
    done <"$D/ids"
    # Every job ran while the slow client was still connected.
    alive "$SLOW_PID" || fail "the slow client was cut off before the jobs ran: no proof"
    assert_equal "$(status_of /livez)" 200
    wait_until 40 process_gone "$SLOW_PID"
    assert_equal "$(status_of /readyz)" 200
}

@test "--http: PORT alone is loopback; an address binds there; bad addresses exit 2; a taken port exits 4" {
    start_http_worker w q -- cat
    assert_log w "serving http://127.0.0.1:$PORT/ (/livez, /readyz, /metrics)"
    start_worker v --http 0.0.0.0:0 q -- cat
    wait_until 20 log_has v 'serving http://0.0.0.0:'
    local addr
    for addr in nope 70000 ':' 'example.com:80' '[::1' ''; do
        run --separate-stderr workq-work --http "$addr" q -- cat
        [ "$status" -eq 2 ] || fail "--http '$addr': exit $status: $stderr"
        assert_regex "$stderr" '^workq-work: error: --http'
    done
    run --separate-stderr workq-work --http "$PORT" q -- cat
    assert_equal "$status" 4
    assert_regex "$stderr" "--http: cannot listen on 127.0.0.1:$PORT: Address already in use"
}
