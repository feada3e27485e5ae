# Helpers of the HTTP tests (work_http.bats, http.bats, http_scrapes.bats): curl and raw
# requests against 127.0.0.1:$PORT, where the test's server (a worker's --http or
# workq-status --serve) listens; a client that sends one byte a second. Loaded after
# work_helpers or ops_helpers (it uses start_worker, wait_until and $D).

# start_http_worker NAME ARGS...: start_worker NAME --http 0 ARGS...; sets PORT from its log.
start_http_worker() {
    local name=$1
    shift
    start_worker "$name" --http 0 "$@"
    wait_until 20 log_has "$name" 'serving http://' || fail "no 'serving' line: $(cat "$D/$name.log")"
    PORT=$(sed -n 's|.*serving http://127\.0\.0\.1:\([0-9]*\)/ .*|\1|p' "$D/$name.log")
    [ -n "$PORT" ] || fail "no port in: $(cat "$D/$name.log")"
}

# get PATH [CURL ARGS...]: the status line, headers and body, CRs removed.
get() {
    local path=$1
    shift
    curl -sS --max-time 20 -i "$@" "http://127.0.0.1:$PORT$path" | tr -d '\r'
}
# body PATH: the body alone.
body() { curl -sS --max-time 20 "http://127.0.0.1:$PORT$1"; }
# status_of PATH: the HTTP status code alone.
status_of() { curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT$1"; }

# raw TEXT: sends TEXT (printf escapes expanded) on a connection of its own and prints the reply
# until the server closes the connection.
raw() {
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
    printf "$1" >&"$fd"
    timeout 20 cat <&"$fd" | tr -d '\r'
    exec {fd}<&-
}

need_promtool() {
    command -v promtool >/dev/null ||
        skip "promtool is missing (Debian package prometheus; scripts/setup installs it)"
}

# start_slow_client: a client that sends a request line one byte a second and never finishes
# it; the loop ends when a write fails (the server closed the connection). Returns once the
# first byte is sent; its pid is in SLOW_PID (and WORKER_PIDS, for the teardown).
start_slow_client() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$PORT"
        printf G >&3
        touch "$D/slow.started"
        while sleep 1 && printf E >&3; do :; done
    ) 2>/dev/null &
    SLOW_PID=$!
    WORKER_PIDS+=("$SLOW_PID")
    wait_until 10 test -f "$D/slow.started"
}
