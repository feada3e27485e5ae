# Helpers of the fault-injection suite (tests/fault): every test gets a private redis-server on
# loopback TCP and a fault proxy in front of it (workq-fault-proxy, tests/fault/proxy); the
# tools talk through the proxy, the checks read the server directly (rcli, its socket).
# Handler fixtures (tests/fault/handlers) record their runs in an append-only ledger and their
# pids, for the invariant checker (invariants.bash) that every scenario ends with.

# By path: tests/topology loads this file from another directory.
FAULT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$FAULT_DIR/../cli/work_helpers.bash"
source "$FAULT_DIR/invariants.bash"

HANDLERS="$FAULT_DIR/handlers"
REPO_ROOT=$(cd "$FAULT_DIR/../.." && pwd)

fault_setup() {
    D="$BATS_TEST_TMPDIR/d"
    mkdir -p "$D"
    WORKER_PIDS=()
    SUPERVISORS=()
    BACKGROUND_PIDS=()
    export WORKQ_NAMESPACE="f${BATS_TEST_NUMBER}x${RANDOM}"
    export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/config" XDG_STATE_HOME="$BATS_TEST_TMPDIR/state"
    unset WORKQ_CONFIG REDIS_URL WORKQ_REDIS_PASSWORD WORKQ_TEST_OWN_REDIS_DIR
    OWN="$BATS_TEST_TMPDIR/own"
    mkdir -p "$OWN"
    start_redis_tcp "$OWN"
    export WORKQ_TEST_REDIS_SOCKET="$OWN/redis.sock"
    export DIRECT_URL="unix://$OWN/redis.sock"
    start_proxy
    export WORKQ_REDIS_URL="redis://127.0.0.1:$PROXY_PORT"
    export FAULT_LEDGER="$D/ledger" FAULT_PIDS="$D/handlers.pids"
    : >"$FAULT_LEDGER"
    : >"$FAULT_PIDS"
}

# Stops everything the test started, by pid: supervisors and their workers, workers, handlers
# still recorded, the proxy, the server; then checks that none of them is left.
fault_teardown() {
    local pid
    for pid in "${BACKGROUND_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    stop_supervisors
    work_teardown
    if [ -f "${FAULT_PIDS:-/nonexistent}" ]; then
        # Handlers recorded, and their process groups: only what is plainly ours.
        for pid in $(ps -eo pid=,pgid= | awk 'FILENAME == ARGV[1] { r[$1] = 1; next }
                ($1 in r) || ($2 in r) { print $1 }' "$FAULT_PIDS" -); do
            grep -qaE "sleep|$HANDLERS|$D" "/proc/$pid/cmdline" 2>/dev/null &&
                kill -9 "$pid" 2>/dev/null || true
        done
    fi
    [ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null || true
    local left=""
    [ -n "${PROXY_PID:-}" ] && { wait_until 5 process_gone "$PROXY_PID" || left+=" proxy $PROXY_PID"; }
    if [ -f "$OWN/redis.pid" ]; then
        pid=$(cat "$OWN/redis.pid")
        wait_until 5 process_gone "$pid" || left+=" redis-server $pid"
    fi
    for pid in "${WORKER_PIDS[@]}" $(cat "$D"/*.all 2>/dev/null); do
        process_gone "$pid" || left+=" worker $pid"
    done
    [ -z "$left" ] || {
        echo "left running after the test:$left" >&2
        return 1
    }
    # Supervisors restart crashed workers: a sanitizer's report would otherwise go unseen.
    local reports
    reports=$(grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D"/*.log 2>/dev/null || true)
    [ -z "$reports" ] || {
        echo "sanitizer reports in: $reports" >&2
        head -40 $reports >&2
        return 1
    }
}

# ---- the proxy --------------------------------------------------------------------------------

# start_proxy: a fault proxy in front of the test's server; sets PROXY_PORT and PROXY_PID.
start_proxy() {
    workq-fault-proxy --listen 127.0.0.1:0 --upstream "127.0.0.1:$REDIS_TCP_PORT" \
        --control "$D/proxy.sock" >"$D/proxy.port" 2>"$D/proxy.log" 3>&- &
    PROXY_PID=$!
    wait_until 10 test -s "$D/proxy.port"
    wait_until 5 test -S "$D/proxy.sock"
    PROXY_PORT=$(cat "$D/proxy.port")
}

# proxy_ctl COMMAND [ARG...]: steers the proxy (pass, delay MS, blackhole, reset, refuse,
# drop N [TEXT], cut N, stats); fails when the proxy answers with an error.
proxy_ctl() { workq-fault-proxy --control "$D/proxy.sock" "$@" >/dev/null; }

# proxy_stat NAME: one counter of the proxy's stats.
proxy_stat() {
    workq-fault-proxy --control "$D/proxy.sock" stats | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# pcli ARGS...: redis-cli through the proxy.
pcli() { redis-cli -h 127.0.0.1 -p "$PROXY_PORT" "$@"; }

# script_sha NAME: a word of the calls of lib/lua/NAME.lua, to aim `drop` at one script's
# replies: on a server with workq's function library loaded (Redis >= 7, after a first call),
# the function's name (FCALL workq_<hash>_NAME, a part of its twin's without the slot guard,
# workq_<hash>_NAME_n, that a single server's calls name); else the SHA1 of its EVAL text (the shared
# helpers, the slot guard's call, the script, as cmake/embed_lua.cmake embeds it).
script_sha() {
    local library
    library=$(redis-cli -s "$OWN/redis.sock" function list 2>/dev/null | grep -m1 -x 'workq_[0-9a-f]*')
    if [ -n "$library" ]; then
        echo "${library}_$1"
    else
        { cat "$REPO_ROOT"/lib/lua/common/*.lua; printf 'slot_guard(KEYS); '; cat "$REPO_ROOT/lib/lua/$1.lua"; } |
            sha1sum | cut -c1-40
    fi
}

# ---- the server -------------------------------------------------------------------------------

# restart_redis [ARGS...]: stops the test's server (SHUTDOWN: it writes its append-only file)
# and starts it again on the same port and directory.
restart_redis() {
    local pid
    pid=$(cat "$OWN/redis.pid")
    rcli shutdown >/dev/null 2>&1 || true
    wait_until 10 process_gone "$pid"
    rm -f "$OWN/redis.sock"
    redis-server --port "$REDIS_TCP_PORT" --bind 127.0.0.1 --unixsocket "$OWN/redis.sock" \
        --unixsocketperm 700 --save '' --daemonize yes --pidfile "$OWN/redis.pid" \
        --logfile "$OWN/redis.log" --dir "$OWN" "$@"
    wait_until 10 rcli ping
}

# ---- jobs and workers -------------------------------------------------------------------------

# enqueue_jobs QUEUE COUNT [OPTIONS...]: COUNT jobs (payloads job-1...), enqueued directly (not
# through the proxy); their ids appended to $D/ids.
enqueue_jobs() {
    local queue=$1 count=$2
    shift 2
    seq -f 'job-%g' "$count" | WORKQ_REDIS_URL=$DIRECT_URL workq-enqueue "$@" "$queue" >>"$D/ids"
}

# all_settled QUEUE: no job of the queue waits, is scheduled or runs (for wait_until). One
# script reads all three at one instant: read one by one, a job taken back by the reaper and
# claimed again between two reads would be seen nowhere.
all_settled() {
    local p="{$WORKQ_NAMESPACE:$1}:"
    [ "$(rcli eval "local n = redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])
        for _, list in ipairs(redis.call('KEYS', ARGV[1])) do n = n + redis.call('LLEN', list) end
        return n" 2 "${p}running" "${p}scheduled" "${p}waiting:*")" -eq 0 ]
}

# count_in_state QUEUE STATE: how many of the ids in $D/ids are in STATE.
count_in_state() {
    awk -v p="{$WORKQ_NAMESPACE:$1}:" '{ printf "HGET \"%sjob:%s\" state\n", p, $1 }' "$D/ids" |
        rcli | grep -cx "$2" || true
}

# ledger_runs ID: how many runs of the job reached their end.
ledger_runs() { grep -c "^end $1 " "$FAULT_LEDGER" || true; }

# ledger_starts ID: how many runs of the job began.
ledger_starts() { grep -c "^start $1 " "$FAULT_LEDGER" || true; }

# start_worker_under NAME WRAPPER... -- ARGS...: like start_worker, with the worker run under
# a wrapper command (faketime -f +2m).
start_worker_under() {
    local name=$1
    shift
    local -a wrapper=()
    while [ "$1" != -- ]; do
        wrapper+=("$1")
        shift
    done
    shift
    "${wrapper[@]}" workq-work "$@" >"$D/$name.out" 2>"$D/$name.log" 3>&- &
    LAST_PID=$!
    WORKER_PIDS+=("$LAST_PID")
    echo "$LAST_PID" >"$D/$name.wpid"
}

# background COMMAND...: runs a loop of the test (a fault injector) in the background until
# stop_background or the teardown; its pid is in $LAST_BACKGROUND.
background() {
    "$@" 3>&- &
    LAST_BACKGROUND=$!
    BACKGROUND_PIDS+=("$LAST_BACKGROUND")
}

# stop_background PID: ends a loop started by background and waits for it.
stop_background() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# ---- supervisors: keep N workers running, as systemd would ------------------------------------

# supervise NAME COUNT ARGS...: keeps COUNT `workq-work ARGS...` running (restarting any that
# exits, after 100 ms), until stop_supervisors. Worker I's current pid is in $D/NAME.I.pid,
# every pid it ever had is appended to $D/NAME.all, logs go to $D/NAME.I.log.
supervise() {
    local name=$1 count=$2
    shift 2
    (
        local -a pids
        local i
        while [ ! -e "$D/$name.stop" ]; do
            for ((i = 1; i <= count; i++)); do
                if [ -z "${pids[i]:-}" ] || ! kill -0 "${pids[i]}" 2>/dev/null; then
                    workq-work "$@" >>"$D/$name.$i.out" 2>>"$D/$name.$i.log" &
                    pids[i]=$!
                    echo "${pids[i]}" >"$D/$name.$i.pid"
                    echo "${pids[i]}" >>"$D/$name.all"
                fi
            done
            sleep 0.1
        done
        for ((i = 1; i <= count; i++)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
        wait
    ) 3>&- &
    SUPERVISORS+=("$name:$!")
}

# stop_supervisors: each supervisor stops its workers (SIGTERM: they drain) and exits; workers
# still there after 15 s are killed.
stop_supervisors() {
    local entry name pid
    for entry in "${SUPERVISORS[@]}"; do
        name=${entry%%:*}
        touch "$D/$name.stop"
    done
    for entry in "${SUPERVISORS[@]}"; do
        name=${entry%%:*}
        pid=${entry##*:}
        if ! wait_until 15 process_gone "$pid"; then
            while read -r worker; do kill -9 "$worker" 2>/dev/null || true; done <"$D/$name.all"
        fi
        wait "$pid" 2>/dev/null || true
    done
    SUPERVISORS=()
}

# supervised_pid NAME I: the current pid of supervised worker I.
supervised_pid() { cat "$D/$1.$2.pid"; }

# blpop_clients_are N: N clients of the test's server wait in BLPOP (for wait_until).
blpop_clients_are() { [ "$(rcli client list | grep -c 'cmd=blpop')" -eq "$1" ]; }

# For wait_until, which runs its command at every poll (a "$(...)" in its arguments would be
# read only once):
# at_least N COMMAND...: COMMAND prints a number of at least N.
at_least() {
    local n=$1
    shift
    [ "$("$@")" -ge "$n" ]
}

# prints VALUE COMMAND...: COMMAND prints exactly VALUE.
prints() {
    local value=$1
    shift
    [ "$("$@")" = "$value" ]
}
