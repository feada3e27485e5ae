#!/usr/bin/env bats
# workq-work --persistent: one long-lived handler per slot, one JSON line per job each way.

load work_helpers

# One cluster for the file when WORKQ_TEST_TOPOLOGY=cluster (helpers.bash).
setup_file() { workq_test_setup_file; }
teardown_file() { workq_test_teardown_file; }

setup() {
    work_setup
    # A handler in Python: answers each request line; its pid is in every result.
    cat >"$D/handler.py" <<'PY'
#!/usr/bin/env python3
import base64, json, os, sys
for line in sys.stdin:
    request = json.loads(line)
    if "payload_base64" in request:
        payload = base64.b64decode(request["payload_base64"])
        reply = {"id": request["id"], "ok": True, "result": "bytes " + payload.hex()}
    else:
        payload = request["payload"]
        if payload == "fail":
            reply = {"id": request["id"], "ok": False, "error": "asked to fail", "retry": False}
        elif payload == "crash":
            os._exit(3)
        elif payload == "garbage":
            print("this is not json", flush=True)
            continue
        elif payload == "other-id":
            reply = {"id": "someone-else", "ok": True}
        else:
            reply = {"id": request["id"], "ok": True,
                     "result": "%d %s %s" % (os.getpid(), request["attempt"], payload.upper())}
    print(json.dumps(reply), flush=True)
PY
    chmod +x "$D/handler.py"
}
teardown() { work_teardown; }

result_pid() { job_field q "$1" result | cut -d' ' -f1; }

# bats test_tags=cluster
@test "one handler process serves many jobs, each answered with its own result" {
    ids=$(seq 1 20 | sed 's/^/job/' | workq-enqueue q)
    start_worker w --persistent --burst q -- "$D/handler.py"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    local pids=() id
    for id in $ids; do
        assert_raw_state q "$id" succeeded
        pids+=("$(result_pid "$id")")
    done
    assert_equal "$(printf '%s\n' "${pids[@]}" | sort -u | wc -l)" 1
    first=$(head -1 <<<"$ids")
    [[ "$(job_field q "$first" result)" == *" 1 JOB1" ]] || fail "result: $(job_field q "$first" result)"
}

@test "--recycle-jobs: a fresh process after every N jobs" {
    ids=$(seq 1 9 | workq-enqueue q)
    start_worker w --persistent --burst --recycle-jobs 3 q -- "$D/handler.py"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    local id
    assert_equal "$(for id in $ids; do result_pid "$id"; done | sort -u | wc -l)" 3
    assert_log w "recycling the persistent handler"
}

@test "--recycle-errors and --recycle-age recycle too" {
    ids=$(printf 'fail\nfail\na\nb\n' | workq-enqueue --max-attempts 1 q)
    start_worker w --persistent --burst --recycle-errors 2 q -- "$D/handler.py"
    wait_exit "$LAST_PID" 30
    assert_log w "recycling the persistent handler"
    a=$(sed -n 3p <<<"$ids")
    assert_raw_state q "$a" succeeded
}

# bats test_tags=cluster
@test "a crash fails only its job (counted), the handler restarts, the rest succeed" {
    ids=$(printf 'a\ncrash\nb\nc\n' | workq-enqueue --max-attempts 1 q)
    start_worker w --persistent --burst q -- "$D/handler.py"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 1  # the crashed job went dead
    crashed=$(sed -n 2p <<<"$ids")
    assert_raw_state q "$crashed" dead
    [[ "$(job_field q "$crashed" error)" == *"crashed"* ]] || fail "error: $(job_field q "$crashed" error)"
    b=$(sed -n 3p <<<"$ids")
    c=$(sed -n 4p <<<"$ids")
    assert_raw_state q "$b" succeeded
    assert_raw_state q "$c" succeeded
    [ "$(result_pid "$(sed -n 1p <<<"$ids")")" != "$(result_pid "$b")" ] || fail "the handler was not restarted"
}

@test "a garbage reply or a reply naming another job fails only that job" {
    ids=$(printf 'garbage\nother-id\nok\n' | workq-enqueue --max-attempts 1 q)
    start_worker w --persistent --burst q -- "$D/handler.py"
    wait_exit "$LAST_PID" 30
    assert_raw_state q "$(sed -n 1p <<<"$ids")" dead
    [[ "$(job_field q "$(sed -n 1p <<<"$ids")" error)" == *"not valid JSON"* ]] || fail "no reason given"
    assert_raw_state q "$(sed -n 2p <<<"$ids")" dead
    [[ "$(job_field q "$(sed -n 2p <<<"$ids")" error)" == *"someone-else"* ]] || fail "no reason given"
    assert_raw_state q "$(sed -n 3p <<<"$ids")" succeeded
}

@test "ok:false with retry:false is dead at once; the worker keeps its handler" {
    id=$(workq-enqueue q fail)
    start_worker w --persistent --burst q -- "$D/handler.py"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 1
    assert_raw_state q "$id" dead
    assert_equal "$(job_field q "$id" attempts)" 1
    assert_equal "$(job_field q "$id" error)" "asked to fail"
}

@test "binary payloads travel as payload_base64, byte for byte" {
    id=$(printf '\xff\x00\x01zz' | workq-enqueue --whole q)
    start_worker w --persistent --burst q -- "$D/handler.py"
    wait_exit "$LAST_PID" 30
    assert_raw_state q "$id" succeeded
    assert_equal "$(job_field q "$id" result)" "bytes ff00017a7a"
}

@test "a handler that never replies: the job times out, the handler is replaced" {
    cat >"$D/silent.sh" <<'SH'
#!/bin/sh
echo $$ >>"$(dirname "$0")/silent.pid"
while read -r line; do :; done
SH
    chmod +x "$D/silent.sh"
    id=$(workq-enqueue --max-attempts 1 q x)
    start_worker w --persistent --burst --timeout 1s --kill-grace 500ms q -- "$D/silent.sh"
    wait_exit "$LAST_PID" 30
    assert_raw_state q "$id" dead
    [[ "$(job_field q "$id" error)" == *"timeout"* ]] || fail "error: $(job_field q "$id" error)"
    wait_until 10 group_gone "$(head -1 "$D/silent.pid")"
}

@test "the handler gets the worker's environment: WORKQ_STATE_DIR, WORKQ_WORKER_ID, no password" {
    cat >"$D/env.py" <<'PY'
#!/usr/bin/env python3
import json, os, sys
for line in sys.stdin:
    request = json.loads(line)
    keys = ["WORKQ_STATE_DIR", "WORKQ_WORKER_ID", "WORKQ_REDIS_URL", "WORKQ_REDIS_PASSWORD"]
    print(json.dumps({"id": request["id"], "ok": True,
                      "result": " ".join(k + "=" + ("set" if os.environ.get(k) else "unset") for k in keys)}), flush=True)
PY
    chmod +x "$D/env.py"
    id=$(workq-enqueue q x)
    WORKQ_REDIS_PASSWORD= start_worker w --persistent --burst q -- "$D/env.py"
    wait_exit "$LAST_PID" 30
    assert_equal "$(job_field q "$id" result)" \
        "WORKQ_STATE_DIR=set WORKQ_WORKER_ID=set WORKQ_REDIS_URL=unset WORKQ_REDIS_PASSWORD=unset"
}

# bats test_tags=cluster
@test "SIGTERM: idle persistent handlers get EOF and exit; the worker exits 0" {
    start_worker w --persistent -c 2 q -- "$D/handler.py"
    local worker=$LAST_PID
    id=$(workq-enqueue q warmup)
    wait_until 10 state_is q "$id" succeeded
    kill -TERM "$worker"
    wait_exit "$worker" 15
    assert_equal "$EXIT_CODE" 0
    ! pgrep -f "$D/handler.py" || fail "a handler outlived its worker"
}

@test "--arg with --persistent is a usage error: the payload travels in the request line" {
    id=$(workq-enqueue q x)
    run --separate-stderr workq-work --persistent --arg --burst q -- "$D/handler.py"
    assert_failure 2
    [[ "$stderr" == *"--arg and --persistent cannot be used together"* ]] || fail "$stderr"
    assert_raw_state q "$id" waiting
}

@test "a handler that prints a banner on stdout: the job's error quotes the line (escaped, cut) and says where banners go" {
    cat >"$D/banner.sh" <<'SH'
#!/bin/sh
# Prints a banner once it has its first request (as a lazy model loader would), then replies.
read -r request
printf 'Loading model v2 \033[1m(42 MB)\033[0m ... done, and a very long tail %s\n' "$(printf 'x%.0s' $(seq 300))"
while :; do
    id=$(printf '%s' "$request" | jq -r .id)
    printf '{"id":"%s","ok":true,"result":"r"}\n' "$id"
    read -r request || exit 0
done
SH
    chmod +x "$D/banner.sh"
    id=$(workq-enqueue --max-attempts 1 q x)
    start_worker w --persistent --burst q -- "$D/banner.sh"
    wait_exit "$LAST_PID" 30
    assert_raw_state q "$id" dead
    local error
    error=$(job_field q "$id" error)
    [[ "$error" == *'not valid JSON'*': "Loading model v2 \x1b[1m(42 MB)\x1b[0m ... done'* ]] || fail "$error"
    [[ "$error" == *'print banners and logs to stderr'* ]] || fail "$error"
    [ "${#error}" -lt 400 ] || fail "the quoted line is not cut: ${#error} bytes"
}

# live_handlers FILE: how many of the handler pids listed in FILE still run.
live_handlers() {
    local pid count=0
    while read -r pid; do
        alive "$pid" && count=$((count + 1))
    done <"$1"
    echo "$count"
}
live_handlers_are() { [ "$(live_handlers "$1")" -eq "$2" ]; }

@test "SIGHUP lowering the concurrency stops the extra handlers once their job is done (issue 23)" {
    # Records its pid; holds each job until $D/release exists; replies with its pid.
    cat >"$D/held.sh" <<'SH'
#!/bin/sh
echo $$ >>"$D/handlers.pid"
while read -r request; do
    id=$(printf '%s' "$request" | jq -r .id)
    : >"$D/running/$id"
    while [ ! -e "$D/release" ]; do sleep 0.05; done
    rm -f "$D/running/$id"
    printf '{"id":"%s","ok":true,"result":"%s"}\n' "$id" $$
done
SH
    chmod +x "$D/held.sh"
    mkdir "$D/running"
    export D
    printf '[work]\nconcurrency = 3\n' >"$D/config.toml"
    start_worker w --persistent --config "$D/config.toml" q -- "$D/held.sh"
    local w=$LAST_PID
    wait_until 10 has_lines "$D/handlers.pid" 3
    workq-enqueue q a b c >"$D/ids"
    wait_until 10 file_count_is "$D/running" 3

    # Lowered while all three run: nothing is stopped before its job is done.
    printf '[work]\nconcurrency = 1\n' >"$D/config.toml"
    kill -HUP "$w"
    wait_until 10 worker_field_is "$w" concurrency 1
    assert_equal "$(live_handlers "$D/handlers.pid")" 3
    assert_equal "$(ls "$D/running" | wc -l)" 3

    touch "$D/release"
    local id
    while read -r id; do
        wait_until 10 state_is q "$id" succeeded
        assert_equal "$(job_field q "$id" attempts)" 1
    done <"$D/ids"
    # Then the two extra handlers go; one stays, and serves what comes next.
    wait_until 10 live_handlers_are "$D/handlers.pid" 1
    assert_log w "concurrency lowered to 1: stopping the persistent handler of slot"
    id=$(workq-enqueue q d)
    wait_until 10 state_is q "$id" succeeded
    local kept
    kept=$(while read -r pid; do if alive "$pid"; then echo "$pid"; fi; done <"$D/handlers.pid")
    assert_equal "$(job_field q "$id" result)" "$kept"
    assert_equal "$(wc -l <"$D/handlers.pid")" 3

    # Raised again: the slots get fresh handlers.
    printf '[work]\nconcurrency = 2\n' >"$D/config.toml"
    kill -HUP "$w"
    wait_until 10 has_lines "$D/handlers.pid" 4
    wait_until 10 live_handlers_are "$D/handlers.pid" 2
    alive "$w"
}
