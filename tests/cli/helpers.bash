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
