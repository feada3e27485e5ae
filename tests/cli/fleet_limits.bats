#!/usr/bin/env bats
# Fleet-wide limits per queue (issue 20, CONTRACT.md §12): `workq-queue limit`, enforced by the
# claim on the server, shown by workq-status and workq-queue ls; workers held back by a limit
# wait without polling and go on with their other queues.

load work_helpers

setup() { work_setup; }
teardown() { work_teardown; }

# started_times QUEUE LEDGER: the server's start time (ms) of each job the ledger names, sorted.
# The guarantee is stated on the server's clock (the claim records `started`): a handler's own
# clock adds its start-up delay, which varies from job to job.
started_times() {
    local id
    while read -r id; do
        job_field "$1" "$id" started
    done <"$2" | sort -n
}

# ---- workq-queue limit -----------------------------------------------------------------------

@test "limit sets, prints and clears a queue's limits; status and ls show them" {
    workq-enqueue api x >/dev/null
    run --separate-stderr workq-queue limit api --rate 20/1s --concurrency 3
    assert_success
    assert_equal "$output" "rate 20/1s
concurrency 3"
    # Without options it prints them; the form round-trips into --rate and --concurrency.
    run --separate-stderr workq-queue limit api
    assert_success
    assert_equal "$output" "rate 20/1s
concurrency 3"
    run --separate-stderr workq-status api --json
    assert_success
    assert_equal "$(jq -r '.queues[0].rate_limit' <<<"$output")" "20/1s"
    assert_equal "$(jq -r '.queues[0].concurrency_limit' <<<"$output")" 3
    run --separate-stderr workq-status api
    assert_success
    [[ "$output" == *LIMITS* && "$output" == *"20/1s, 3 running"* ]] || fail "$output"
    run --separate-stderr workq-status api --prometheus
    assert_success
    [[ "$output" == *'workq_queue_rate_limit{namespace="'*'",queue="api"} 20'* ]] || fail "$output"
    [[ "$output" == *'workq_queue_rate_limit_window_seconds{namespace="'*'",queue="api"} 1.000'* ]] ||
        fail "$output"
    [[ "$output" == *'workq_queue_concurrency_limit{namespace="'*'",queue="api"} 3'* ]] || fail "$output"
    run --separate-stderr workq-queue ls api
    assert_success
    [[ "$stderr" == *"queue api is limited"*"at most 20 starts in any 1s"*"at most 3 running at once"* ]] ||
        fail "$stderr"
    # One at a time; 0 removes.
    run --separate-stderr workq-queue limit api --rate 0
    assert_success
    assert_equal "$output" "rate 0
concurrency 3"
    run --separate-stderr workq-queue limit api --concurrency 0
    assert_equal "$output" "rate 0
concurrency 0"
    run --separate-stderr workq-status api --json
    assert_equal "$(jq -c '.queues[0] | [.rate_limit, .concurrency_limit]' <<<"$output")" "[null,null]"
    run --separate-stderr workq-queue ls api
    [[ "$stderr" != *"limited"* ]] || fail "$stderr"
}

@test "limit of a queue the namespace has never seen is exit 1 unless --create" {
    run --separate-stderr workq-queue limit mial --rate 1/1s
    assert_equal "$status" 1
    [[ "$stderr" == *"no queue mial"*"--create"* ]] || fail "$stderr"
    assert_equal "$(rcli exists "{$WORKQ_NAMESPACE:mial}:meta")" 0
    run --separate-stderr workq-queue limit mial --rate 1/1s --create
    assert_success
    assert_equal "$(meta_field mial limit_rate)" 1
}

# Each bad value: exit 2 naming it, before anything is sent; the limits stay as they were.
bad_limit() {
    workq-queue limit api --create --concurrency 5 >/dev/null
    run --separate-stderr workq-queue limit api "$@"
    assert_equal "$status" 2
    assert_equal "$output" ""
    assert_equal "$(meta_field api limit_concurrency)" 5
    assert_equal "$(meta_field api limit_rate)" ""
}

@test "--rate without /DURATION is exit 2" {
    bad_limit --rate 10
    [[ "$stderr" == *"--rate '10': no /DURATION"* ]] || fail "$stderr"
}

@test "--rate whose N is not a whole number is exit 2" {
    bad_limit --rate x/1s
    [[ "$stderr" == *"--rate 'x/1s': N is not a whole number"* ]] || fail "$stderr"
    bad_limit --rate 1.5/1s
    [[ "$stderr" == *"N is not a whole number"* ]] || fail "$stderr"
}

@test "--rate whose N is negative or over 100000 is exit 2" {
    bad_limit --rate=-1/1s
    [[ "$stderr" == *"N is not a whole number"* || "$stderr" == *"N must be 0 to 100000"* ]] ||
        fail "$stderr"
    bad_limit --rate 100001/1s
    [[ "$stderr" == *"N must be 0 to 100000"* ]] || fail "$stderr"
}

@test "--rate whose DURATION is not a duration is exit 2" {
    bad_limit --rate 10/abc
    [[ "$stderr" == *"--rate '10/abc': DURATION is not a duration"* ]] || fail "$stderr"
}

@test "--rate with a zero DURATION is exit 2" {
    bad_limit --rate 10/0
    [[ "$stderr" == *"DURATION must be at least 1ms"* ]] || fail "$stderr"
}

@test "--concurrency that is not a whole number from 0 to 1000000 is exit 2" {
    bad_limit --concurrency x
    [[ "$stderr" == *"--concurrency 'x': not a whole number from 0 to 1000000"* ]] || fail "$stderr"
    bad_limit --concurrency=-1
    [[ "$stderr" == *"--concurrency '-1'"* ]] || fail "$stderr"
    bad_limit --concurrency 1000001
    [[ "$stderr" == *"--concurrency '1000001'"* ]] || fail "$stderr"
}

@test "limit of a malformed queue name is exit 2" {
    run --separate-stderr workq-queue limit 'bad name' --rate 1/1s
    assert_equal "$status" 2
    [[ "$stderr" == *"bad name"* ]] || fail "$stderr"
}

@test "a bad limit is exit 2 even with no server to reach" {
    WORKQ_REDIS_URL=redis://127.0.0.1:1 run --separate-stderr workq-queue limit api --rate 10/x
    assert_equal "$status" 2
}

# ---- enforced across a fleet -----------------------------------------------------------------

@test "rate 20/1s, 4 workers -c 4, 200 jobs: never more than 20 starts in any 1 s window" {
    workq-queue limit api --create --rate 20/1s >/dev/null
    seq 200 | workq-enqueue api >"$D/ids"
    local h i
    h=$(make_handler record <<EOF
echo "\$WORKQ_JOB_ID" >>"$D/ledger"
EOF
)
    for i in 1 2 3 4; do start_worker "w$i" -c 4 api -- "$h"; done
    wait_until 120 has_lines "$D/ledger" 200
    wait_until 20 succeeded_is api 200
    assert_equal "$(sort -u "$D/ledger" | wc -l)" 200
    started_times api "$D/ledger" >"$D/started"
    assert_equal "$(wc -l <"$D/started")" 200
    # A half-open window [t, t+1000) holds starts i..i+20 exactly when t[i+20] - t[i] < 1000:
    # every 21 consecutive starts must span at least 1000 ms.
    run awk '{ t[NR] = $1 } END { bad = 0; for (i = 1; i + 20 <= NR; i++) if (t[i + 20] - t[i] < 1000) { print "starts " i ".." i + 20 " span " t[i + 20] - t[i] " ms"; bad = 1 } exit bad }' "$D/started"
    assert_success
    # Held back, the workers said so (at info, once per queue).
    assert_log w1 "queue api held back by its rate limit"
}

@test "concurrency 3 with 4 workers -c 4: never more than 3 of the queue's jobs run at once" {
    workq-queue limit api --create --concurrency 3 >/dev/null
    seq 30 | workq-enqueue api >/dev/null
    local h i
    # Each start and end is one append (O_APPEND): the file's order is the order they happened,
    # and a handler runs inside its job's time in `running` on the server.
    h=$(make_handler overlap <<EOF
echo + >>"$D/ledger"
sleep 0.2
echo - >>"$D/ledger"
EOF
)
    for i in 1 2 3 4; do start_worker "w$i" -c 4 api -- "$h"; done
    wait_until 120 has_lines "$D/ledger" 60
    run awk '$1 == "+" { n++; if (n > max) max = n } $1 == "-" { n-- } END { print max }' "$D/ledger"
    [ "$output" -le 3 ] || fail "$output jobs ran at once"
    [ "$output" -ge 1 ] || fail "nothing ran"
}

@test "a worker killed with kill -9 while holding jobs frees its places after the lease" {
    workq-queue limit api --create --concurrency 2 >/dev/null
    seq 3 | workq-enqueue api >"$D/ids"
    start_worker a -c 2 --lease 1s api -- sleep 1000
    local a=$LAST_PID
    wait_until 20 running_is api 2
    start_worker b -c 2 --lease 1s api -- cat
    # b is held back by the limit: the third job waits while a holds both places.
    wait_until 20 log_has b "queue api held back by its concurrency limit"
    assert_equal "$(workq-status api --json | jq '.queues[0].waiting')" 1
    kill -9 "$a"
    wait_until 30 succeeded_is api 3
}

@test "a worker held back by a rate limit goes on with its other queues" {
    workq-queue limit slow --create --rate 1/1h >/dev/null
    seq 3 | workq-enqueue slow >/dev/null
    seq 10 | workq-enqueue fast >/dev/null
    start_worker w -c 2 slow,fast -- cat
    wait_until 30 succeeded_is fast 10
    run --separate-stderr workq-status slow --json
    assert_equal "$(jq -c '.queues[0] | [.succeeded, .waiting]' <<<"$output")" "[1,2]"
    # A job enqueued to the held queue meanwhile does not start either.
    workq-enqueue slow late >/dev/null
    seq 3 | workq-enqueue fast >/dev/null
    wait_until 30 succeeded_is fast 13
    assert_equal "$(workq-status slow --json | jq '.queues[0].succeeded')" 1
}

@test "a worker held back by a rate limit issues only a few commands per second" {
    local own="$BATS_TEST_TMPDIR/own"
    mkdir -p "$own"
    start_redis "$own"
    export WORKQ_REDIS_URL="unix://$own/redis.sock" WORKQ_TEST_REDIS_SOCKET="$own/redis.sock"
    workq-queue limit api --create --rate 1/1h >/dev/null
    seq 20 | workq-enqueue api >/dev/null
    start_worker w -c 4 api -- cat
    local w=$LAST_PID
    wait_until 20 log_has w "queue api held back by its rate limit"
    local before after
    before=$(client_calls "$own/redis.sock")
    sleep 5
    after=$(client_calls "$own/redis.sock")
    alive "$w"
    # Its heartbeat, reaper and a claim when its hold is looked at again (at most every 5 s):
    # no polling while 19 jobs wait.
    [ $((after - before)) -le 15 ] || fail "$((after - before)) commands in 5 s from a held worker"
    assert_equal "$(workq-status api --json | jq '.queues[0].succeeded')" 1
}

@test "--burst waits for the jobs a limit holds back: they are due" {
    workq-queue limit api --create --rate 2/500ms --concurrency 1 >/dev/null
    seq 6 | workq-enqueue api >/dev/null
    start_worker w --burst -c 4 api -- cat
    wait_exit "$LAST_PID" 60
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(workq-status api --json | jq -c '.queues[0] | [.succeeded, .waiting]')" "[6,0]"
}

# succeeded_is QUEUE N, running_is QUEUE N (for wait_until)
succeeded_is() { [ "$(workq-status "$1" --json | jq '.queues[0].succeeded')" = "$2" ]; }
running_is() { [ "$(workq-status "$1" --json | jq '.queues[0].running')" = "$2" ]; }

# client_calls SOCKET: how many commands clients sent the server (as in work_signals.bats).
client_calls() {
    redis-cli -s "$1" info commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\(eval\|evalsha\|fcall\|blpop\|ping\|auth\|select\|hello\):calls=\([0-9]*\),.*/\2/p' |
        awk '{ total += $1 } END { print total + 0 }'
}
