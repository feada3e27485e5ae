#!/usr/bin/env bats
# The HTTP endpoints (CONTRACT.md section 12, issue 20), with curl against real processes:
# `workq-status --serve ADDR` serves /metrics (what --prometheus prints, computed per scrape,
# promtool-clean) and /livez; everything else gets 404, other methods 405, bytes that are not a
# request 400, oversized requests 431/413; a client sending one byte a second delays nobody and
# is cut off; an unreachable Redis is a 503, not the end of the exporter; bad addresses are usage
# errors; SIGTERM stops it.

load ops_helpers
load http_helpers

setup() { ops_setup; }
teardown() { ops_teardown; }

# start_serve [ARGS...]: `workq-status --serve 0 ARGS...` in the background (stopped by
# teardown); sets SERVE_PID and PORT, the port the kernel picked, from its log line.
start_serve() {
    workq-status --serve 0 "$@" >"$D/serve.out" 2>"$D/serve.log" &
    SERVE_PID=$!
    WORKER_PIDS+=("$SERVE_PID")
    wait_until 20 grep -q 'serving http://' "$D/serve.log" ||
        fail "no 'serving' line: $(cat "$D/serve.log")"
    PORT=$(sed -n 's|.*serving http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$D/serve.log")
    [ -n "$PORT" ] || fail "no port in: $(cat "$D/serve.log")"
}

# without_ages FILE: the metrics without the age of the oldest job, which grows between reads.
without_ages() { grep -v '^workq_queue_oldest_waiting_age_seconds{' "$1"; }

@test "--serve: /metrics is what --prometheus prints, promtool-clean, computed on each scrape" {
    need_promtool
    workq-enqueue q1 a b c >/dev/null
    workq-enqueue --max-attempts 1 q2 x >/dev/null
    start_serve
    run get /metrics
    assert_success
    assert_line --index 0 'HTTP/1.1 200 OK'
    assert_line 'Content-Type: text/plain; version=0.0.4; charset=utf-8'
    curl -sS --max-time 20 "http://127.0.0.1:$PORT/metrics" >"$D/served"
    workq-status --prometheus >"$D/printed" 2>/dev/null
    diff <(without_ages "$D/served") <(without_ages "$D/printed")
    run promtool check metrics <"$D/served"
    assert_success
    assert_output ""
    # Each scrape looks again: two more jobs show on the next one.
    workq-enqueue q1 d e >/dev/null
    run curl -sS --max-time 20 "http://127.0.0.1:$PORT/metrics"
    assert_line "workq_queue_waiting{namespace=\"$WORKQ_NAMESPACE\",queue=\"q1\"} 5"
    # Nothing on stdout: it is a server, not a report.
    [ ! -s "$D/serve.out" ] || fail "stdout: $(cat "$D/serve.out")"
}

@test "--serve QUEUE...: the metrics of those queues only" {
    workq-enqueue q1 a >/dev/null
    workq-enqueue q2 b >/dev/null
    start_serve q2
    run curl -sS --max-time 20 "http://127.0.0.1:$PORT/metrics"
    assert_line "workq_queue_waiting{namespace=\"$WORKQ_NAMESPACE\",queue=\"q2\"} 1"
    refute_line --partial 'queue="q1"'
}

@test "--serve: /livez answers 200 ok; HEAD answers the headers alone" {
    start_serve
    run get /livez
    assert_line --index 0 'HTTP/1.1 200 OK'
    assert_line 'Content-Length: 3'
    assert_line --index "$((${#lines[@]} - 1))" 'ok'
    run get /metrics --head
    assert_line --index 0 'HTTP/1.1 200 OK'
    assert_line --regexp '^Content-Length: [1-9][0-9]*$'
    refute_line --partial 'workq_queue'
    # A query string does not change the path.
    run get '/livez?verbose=1'
    assert_line --index 0 'HTTP/1.1 200 OK'
}

@test "--serve: 404 for another path, 405 for another method, 400 for bytes that are not a request" {
    start_serve
    local path
    for path in / /metric /livez/ /LIVEZ /readyz '/%6civez'; do
        run get "$path"
        assert_line --index 0 'HTTP/1.1 404 Not Found'
    done
    local method
    for method in POST PUT DELETE OPTIONS PATCH; do
        run get /metrics -X "$method"
        assert_line --index 0 'HTTP/1.1 405 Method Not Allowed'
        assert_line 'Allow: GET, HEAD'
    done
    # A small body is read and dropped: the answer is still 405.
    run get /livez --data-binary 'hello'
    assert_line --index 0 'HTTP/1.1 405 Method Not Allowed'
    run raw 'garbage\r\n\r\n'
    assert_line --index 0 'HTTP/1.1 400 Bad Request'
    assert_line 'Connection: close'
    run raw 'GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n'
    assert_line --index 0 'HTTP/1.1 400 Bad Request'
    run raw 'GET livez HTTP/1.1\r\nHost: x\r\n\r\n'
    assert_line --index 0 'HTTP/1.1 400 Bad Request'
    run raw 'GET /livez HTTP/1.1\r\nbroken header\r\n\r\n'
    assert_line --index 0 'HTTP/1.1 400 Bad Request'
    # The server goes on.
    run get /livez
    assert_line --index 0 'HTTP/1.1 200 OK'
}

@test "--serve: a request over the size caps gets 431 (headers) or 413 (body), then the server goes on" {
    start_serve
    run get /livez -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)"
    assert_line --index 0 'HTTP/1.1 431 Request Header Fields Too Large'
    head -c 1000000 /dev/zero >"$D/big"
    run get /livez --data-binary @"$D/big"
    assert_line --index 0 'HTTP/1.1 413 Payload Too Large'
    run get /livez
    assert_line --index 0 'HTTP/1.1 200 OK'
}

@test "--serve: keep-alive: several requests on one connection" {
    start_serve
    run curl -sS --max-time 20 -w '%{http_code} %{num_connects}\n' -o /dev/null -o /dev/null \
        -o /dev/null "http://127.0.0.1:$PORT/livez" "http://127.0.0.1:$PORT/metrics" \
        "http://127.0.0.1:$PORT/nope"
    assert_success
    assert_equal "$output" $'200 1\n200 0\n404 0'
}

@test "--serve: a client sending one byte a second delays no other request, and is cut off" {
    start_serve
    start_slow_client
    run get /livez
    assert_line --index 0 'HTTP/1.1 200 OK'
    run get /metrics
    assert_line --index 0 'HTTP/1.1 200 OK'
    # A request has 10 s to arrive whole.
    wait_until 40 process_gone "$SLOW_PID"
    run get /livez
    assert_line --index 0 'HTTP/1.1 200 OK'
}

@test "--serve: a scrape while Redis is unreachable gets 503 with the reason; the next one reconnects" {
    use_own_redis
    workq-enqueue q a >/dev/null
    start_serve
    run get /metrics
    assert_line --index 0 'HTTP/1.1 200 OK'
    local pid
    pid=$(cat "$OWN/redis.pid")
    stop_redis "$OWN"
    wait_until 10 process_gone "$pid"
    run get /metrics
    assert_line --index 0 'HTTP/1.1 503 Service Unavailable'
    assert_line --partial 'cannot read the queues: '
    # Liveness is the exporter's own, not the server's.
    run get /livez
    assert_line --index 0 'HTTP/1.1 200 OK'
    grep -q 'error: a scrape failed' "$D/serve.log" || fail "no log line: $(cat "$D/serve.log")"
    start_redis "$OWN"
    # (Restarted without persistence, the server has forgotten the queue: the scrape works.)
    run get /metrics
    assert_line --index 0 'HTTP/1.1 200 OK'
    assert_line 'workq_server_warnings 1'
}

@test "--serve: SIGTERM stops it with exit 0, a client in the middle of a request or not" {
    start_serve
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'GET /li' >&"$fd"
    kill -TERM "$SERVE_PID"
    # Well within the request timeout (10 s): the unfinished request does not hold it.
    wait_exit "$SERVE_PID" 5
    exec {fd}<&-
    assert_equal "$EXIT_CODE" 0
    grep -q 'info: stopped' "$D/serve.log"
    run curl -sS --max-time 5 "http://127.0.0.1:$PORT/livez"
    assert_failure
}

@test "--serve: bad addresses and combinations are usage errors (exit 2); a taken port is exit 1" {
    local addr
    for addr in nope 70000 -1 ':' '1.2.3.4:' 'example.com:80' '::1:80' '[::1]80' '[::1' ''; do
        run --separate-stderr workq-status --serve "$addr"
        [ "$status" -eq 2 ] || fail "--serve '$addr': exit $status: $stderr"
        assert_regex "$stderr" '^workq-status: error: --serve'
    done
    run --separate-stderr workq-status --serve 0 --json
    assert_equal "$status" 2
    run --separate-stderr workq-status --serve 0 --watch
    assert_equal "$status" 2
    run --separate-stderr workq-status --serve 0 job x
    assert_equal "$status" 2
    assert_regex "$stderr" 'does not go with `job`'
    run --separate-stderr workq-status --serve 0 --check
    assert_equal "$status" 3
    assert_output --regexp '^WORKQ UNKNOWN: '
    start_serve
    run --separate-stderr workq-status --serve "$PORT"
    assert_equal "$status" 1
    assert_equal "$stderr" "workq-status: error: cannot listen on 127.0.0.1:$PORT: Address already in use"
}

@test "--serve: an unreachable server at the start ends it with exit 3" {
    run --separate-stderr env WORKQ_REDIS_URL="unix://$BATS_TEST_TMPDIR/none.sock" \
        workq-status --serve 0
    assert_equal "$status" 3
}
