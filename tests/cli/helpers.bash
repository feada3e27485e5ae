# Shared helpers for the command-line tests: a real redis-server (the one scripts/test started,
# or one of our own), a private namespace per test, bounded waits, and domain assertions.

bats_require_minimum_version 1.5.0

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

WORKQ_BIN=${WORKQ_BIN:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build-test}
export PATH="$WORKQ_BIN:$PATH"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# Starts a redis-server of our own on a socket under $1 (a directory); prints nothing.
# Its pid is in $1/redis.pid.
start_redis() {
    local dir=$1
    shift
    redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --save '' \
        --appendonly no --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        --dir "$dir" "$@"
    wait_until 5 redis-cli -s "$dir/redis.sock" ping
}

stop_redis() {
    local dir=$1
    [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
}

# Every test gets a namespace of its own on the shared server, and a clean environment: no
# config file from the machine, no embedded state shared with the user.
workq_test_setup() {
    if [ -z "${WORKQ_TEST_REDIS_URL:-}" ]; then
        export WORKQ_TEST_OWN_REDIS_DIR=$(mktemp -d)
        start_redis "$WORKQ_TEST_OWN_REDIS_DIR"
        export WORKQ_TEST_REDIS_URL="unix://$WORKQ_TEST_OWN_REDIS_DIR/redis.sock"
        export WORKQ_TEST_REDIS_SOCKET="$WORKQ_TEST_OWN_REDIS_DIR/redis.sock"
    fi
    export WORKQ_REDIS_URL=$WORKQ_TEST_REDIS_URL
    export WORKQ_NAMESPACE="t${BATS_TEST_NUMBER}x${RANDOM}${RANDOM}"
    export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/config"
    export XDG_STATE_HOME="$BATS_TEST_TMPDIR/state"
    unset WORKQ_CONFIG REDIS_URL WORKQ_REDIS_PASSWORD
}

workq_test_teardown() {
    [ -n "${WORKQ_TEST_OWN_REDIS_DIR:-}" ] && stop_redis "$WORKQ_TEST_OWN_REDIS_DIR"
    return 0
}

# redis-cli against the test server.
rcli() { redis-cli -s "$WORKQ_TEST_REDIS_SOCKET" "$@"; }

# wait_until SECONDS COMMAND...: polls COMMAND until it succeeds; fails after SECONDS.
wait_until() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds))
    while ! "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "timed out after ${seconds}s waiting for: $*" >&2
            return 1
        fi
        sleep 0.05
    done
}

# The state of a job, read from the raw record (not through workq's own code).
raw_job_state() {
    local queue=$1 id=$2
    rcli hget "{$WORKQ_NAMESPACE:$queue}:job:$id" state
}

assert_raw_state() {
    local queue=$1 id=$2 expected=$3
    local actual
    actual=$(raw_job_state "$queue" "$id")
    [ "$actual" = "$expected" ] || fail "job $id in $queue is '$actual', expected '$expected'"
}

# at_terminal COMMAND...: runs COMMAND with stdin, stdout and stderr on a pseudo-terminal, as a
# person at a terminal would (no colour); prints what it wrote, '\r' removed. Lines to type go
# on at_terminal's own stdin.
at_terminal() {
    NO_COLOR=1 script -qec "$(printf '%q ' "$@")" /dev/null | tr -d '\r'
}

# ---- Helpers of connection.bats, config.bats, embedded.bats and enqueue.bats ----

# start_redis_tcp DIR [ARGS...]: a redis-server of our own on a free TCP port of 127.0.0.1 (and
# a socket, DIR/redis.sock). Sets REDIS_TCP_PORT; the port is also in DIR/port, the pid in
# DIR/redis.pid. Tries a few random ports: another program may hold one.
start_redis_tcp() {
    local dir=$1
    shift
    local port attempt
    for attempt in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 40000))
        rm -f "$dir/redis.pid"
        redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$dir/redis.sock" \
            --unixsocketperm 700 --save '' --appendonly no --daemonize yes \
            --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" "$@"
        # redis-server binds its TCP port before it makes its socket, and exits when it cannot.
        if wait_until 3 test -S "$dir/redis.sock" && redis-cli -s "$dir/redis.sock" ping >/dev/null; then
            echo "$port" >"$dir/port"
            REDIS_TCP_PORT=$port
            return 0
        fi
        stop_redis "$dir"
        : >"$dir/redis.log"
    done
    echo "could not start a redis-server on a free TCP port" >&2
    return 1
}

# redis_info_field SOCKET FIELD [REDIS-CLI ARGS...]: one field of the server's INFO.
redis_info_field() {
    local socket=$1 field=$2
    shift 2
    redis-cli -s "$socket" --no-auth-warning "$@" info all | tr -d '\r' | sed -n "s/^$field://p"
}

# job_field QUEUE ID FIELD: one field of a job's raw record on the test server.
job_field() { rcli hget "{$WORKQ_NAMESPACE:$1}:job:$2" "$3"; }

# job_exists QUEUE ID: whether the job's record is on the test server.
# A job's attempts so far: a fresh record stores none (absent means 0).
job_attempts() {
    local attempts
    attempts=$(job_field "$1" "$2" attempts)
    echo "${attempts:-0}"
}

job_exists() { [ "$(rcli exists "{$WORKQ_NAMESPACE:$1}:job:$2")" = 1 ]; }

# job_count QUEUE: how many job records the queue has on the test server.
job_count() { rcli --scan --pattern "{$WORKQ_NAMESPACE:$1}:job:*" | wc -l; }

# raw_payload_to FILE QUEUE ID: the bytes of a job's payload, exactly, into FILE.
raw_payload_to() {
    local file=$1 queue=$2 id=$3
    # Not a terminal: redis-cli prints the raw bytes and one newline of its own.
    rcli hget "{$WORKQ_NAMESPACE:$queue}:job:$id" payload | head -c -1 >"$file"
}

# now_ms: the wall clock in milliseconds.
now_ms() { date +%s%3N; }

# embedded_test_setup: no server configured anywhere; the embedded default's state and socket
# directories inside the test's own directory.
embedded_test_setup() {
    unset WORKQ_REDIS_URL REDIS_URL WORKQ_REDIS_SERVER WORKQ_REDIS_PASSWORD
    export XDG_STATE_HOME="$BATS_TEST_TMPDIR/state"
    export XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/run"
    mkdir -p "$XDG_RUNTIME_DIR"
    chmod 700 "$XDG_RUNTIME_DIR"
}

# embedded_pid_file: where the embedded server of the current environment records its pid.
embedded_pid_file() {
    if [ -n "${XDG_STATE_HOME:-}" ]; then
        echo "$XDG_STATE_HOME/workq/redis.pid"
    else
        echo "$HOME/.local/state/workq/redis.pid"
    fi
}

# stop_embedded PID_FILE...: stops the embedded servers the test started (by pid, and only a
# redis-server), and waits until they are gone.
stop_embedded() {
    local pid_file pid
    for pid_file in "$@"; do
        [ -f "$pid_file" ] || continue
        pid=$(cat "$pid_file")
        [ -n "$pid" ] && grep -qa redis-server "/proc/$pid/cmdline" 2>/dev/null || continue
        kill "$pid" 2>/dev/null || true
        wait_until 10 process_gone "$pid" || kill -9 "$pid" 2>/dev/null || true
    done
    return 0
}

# process_gone PID: the process has exited (a zombie counts as gone).
process_gone() {
    local state
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -z "$state" ] || [ "$state" = Z ]
}

# assert_json JSON FILTER: `jq -e FILTER` holds for the JSON text (shown when it does not).
assert_json() {
    local input=$1 filter=$2
    jq -e "$filter" <<<"$input" >/dev/null || fail "JSON check failed: $filter
on: $(head -c 2000 <<<"$input")"
}
