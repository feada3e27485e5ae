# Shared helpers for the command-line tests: a real redis-server (the one scripts/test started,
# or one of our own), a private namespace per test, bounded waits, and domain assertions.

bats_require_minimum_version 1.5.0

# bats-support and bats-assert: their function files sourced directly. Their load.bash runs
# `dirname` once per file, 15 processes for every test (~0.1-0.2 s of CPU a test on the 2-core
# CI machine, where a process costs ~10 ms: about two minutes of the suite).
for _workq_lib in /usr/lib/bats/bats-support/src/{output,error,lang}.bash \
    /usr/lib/bats/bats-assert/src/*.bash; do
    source "$_workq_lib"
done
unset _workq_lib

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

# ---- The topology the tests run on: WORKQ_TEST_TOPOLOGY ----
# single (the default): one redis-server, scripts/test's (WORKQ_TEST_REDIS_URL) or one of the
# test's own. cluster: a Redis Cluster on loopback, three masters and a replica of each
# (tests/topology/cluster_helpers.bash), made once per test file by workq_test_setup_file (a
# file's setup_file) or reused (WORKQ_TEST_CLUSTER: the directory of a running one, made by
# cluster_start); the tools reach it through a seed list, rcli follows MOVED (redis-cli -c), and
# each test ends with no CROSSSLOT answered by any node. The cases that hold on a cluster carry
# the bats tag `cluster`: CTest's topology.cluster_cli runs them (bats --filter-tags cluster).
WORKQ_TEST_TOPOLOGY=${WORKQ_TEST_TOPOLOGY:-single}
case $WORKQ_TEST_TOPOLOGY in
single) ;;
cluster)
    WORKQ_CLUSTER_NODES_ONLY=1
    source "$(dirname "${BASH_SOURCE[0]}")/../topology/cluster_helpers.bash"
    unset WORKQ_CLUSTER_NODES_ONLY
    ;;
*)
    echo "WORKQ_TEST_TOPOLOGY is single or cluster, not '$WORKQ_TEST_TOPOLOGY'" >&2
    return 1
    ;;
esac

# workq_test_setup_file: a file's setup_file. On a cluster, makes one for the file's tests (or
# takes WORKQ_TEST_CLUSTER's); nothing on a single server.
workq_test_setup_file() {
    [ "$WORKQ_TEST_TOPOLOGY" = cluster ] || return 0
    if [ -n "${WORKQ_TEST_CLUSTER:-}" ]; then
        export CLUSTER=$WORKQ_TEST_CLUSTER
        export CLUSTER_URL="redis://127.0.0.1:$(cluster_port n1),127.0.0.1:$(cluster_port n2)"
    else
        cluster_start
        export WORKQ_TEST_OWN_CLUSTER=1
    fi
}

workq_test_teardown_file() {
    [ -n "${WORKQ_TEST_OWN_CLUSTER:-}" ] && cluster_stop
    return 0
}

# Every test gets a namespace of its own on the shared server, and a clean environment: no
# config file from the machine, no embedded state shared with the user.
workq_test_setup() {
    if [ "$WORKQ_TEST_TOPOLOGY" = cluster ]; then
        [ -n "${CLUSTER_URL:-}" ] || {
            echo "WORKQ_TEST_TOPOLOGY=cluster: no cluster (the file's setup_file calls workq_test_setup_file)" >&2
            return 1
        }
        export WORKQ_TEST_REDIS_URL=$CLUSTER_URL
        export WORKQ_TEST_REDIS_SOCKET=$(cluster_socket n1)
        export WORKQ_TEST_CLUSTER_PORT=$(cluster_port n1)
    elif [ -z "${WORKQ_TEST_REDIS_URL:-}" ]; then
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
    # A cross-slot call is a bug (issue 19).
    [ -z "${WORKQ_TEST_CLUSTER_PORT:-}" ] || crossslot_free
}

# redis-cli against the test server; on a cluster, one that follows MOVED to the node of each
# command's key (every key of a queue is on one node).
rcli() {
    if [ -z "${WORKQ_TEST_CLUSTER_PORT:-}" ]; then
        redis-cli -s "$WORKQ_TEST_REDIS_SOCKET" "$@"
    elif [ $# -gt 0 ]; then
        redis-cli -c -p "$WORKQ_TEST_CLUSTER_PORT" "$@"
    else
        # Commands on stdin: redis-cli says where it was redirected on stdout.
        redis-cli -c -p "$WORKQ_TEST_CLUSTER_PORT" | sed '/^-> Redirected to slot \[[0-9]*\] located at /d'
    fi
}

# qcli QUEUE ARGS...: redis-cli against the node that holds QUEUE's keys, for what names no key
# (SCAN): the test server, or on a cluster the master of the queue's slot.
qcli() {
    local queue=$1
    shift
    if [ -n "${WORKQ_TEST_CLUSTER_PORT:-}" ]; then
        redis-cli -s "$(cluster_socket "$(queue_master "$queue")")" "$@"
    else
        rcli "$@"
    fi
}

# one_slot_queues NAME...: queue names for a test of a worker serving several queues, one per
# line: the names given on a single server; on a cluster the first name, then each other name
# with the smallest number appended that puts its keys in the first one's slot (CRC16 of the
# hash tag {NS:QUEUE}, as Redis Cluster computes it). A worker serving queues of different slots
# claims them in a chain of calls (tests/topology/cluster.bats tests that); the CLI suite's case
# keeps them on one slot, the one-call path.
one_slot_queues() {
    if [ "$WORKQ_TEST_TOPOLOGY" != cluster ]; then
        printf '%s\n' "$@"
        return
    fi
    python3 - "$WORKQ_NAMESPACE" "$@" <<'PY'
import sys
def slot(tag):
    crc = 0
    for byte in tag.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc % 16384
ns, first, *others = sys.argv[1:]
want = slot(ns + ":" + first)
print(first)
for name in others:
    n = 0
    while slot("%s:%s%d" % (ns, name, n)) != want:
        n += 1
    print("%s%d" % (name, n))
PY
}

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

# free_port: a TCP port of 127.0.0.1 nobody listens on right now (a later bind may still race
# with another program: the starters retry). Below 55000: a cluster node's bus port is its port
# + 10000.
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 35000))
        ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    done
    echo "$port"
}

# stop_by_pid_files FILE...: SIGTERM to the process of each pid file (a missing file is
# skipped), then a bounded wait for each, SIGKILL for any still there after 5 s.
stop_by_pid_files() {
    local file pid pids=()
    for file in "$@"; do
        pid=$(cat "$file" 2>/dev/null) || continue
        pids+=("$pid")
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait_until 5 process_gone "$pid" || kill -9 "$pid" 2>/dev/null || true
    done
}

# redis_node_start [--tls] DIR [CONFIG-FILE] [ARGS...]: a redis-server of a deployment's (the
# topology tests' nodes, a cluster's) in DIR, on a free port of 127.0.0.1 (DIR/port's when it
# ran before: a restarted node keeps its address) and a Unix socket DIR/redis.sock, daemonized
# (DIR/redis.pid, DIR/redis.log, its files in DIR); returns once it answers PING on its socket.
# With --tls the port is its TLS port (--tls-port, --port 0; ARGS give the certificates).
# ARGS come last and win. Tries a few ports: another program may take a free one first.
redis_node_start() {
    local port_option=--port
    if [ "$1" = --tls ]; then
        port_option=--tls-port
        shift
    fi
    local dir=$1
    shift
    local conf=()
    if [ $# -gt 0 ] && [[ "$1" != --* ]]; then
        conf=("$1")
        shift
    fi
    local port attempt
    mkdir -p "$dir"
    for attempt in 1 2 3 4 5; do
        port=$(cat "$dir/port" 2>/dev/null || free_port)
        rm -f "$dir/redis.pid"
        redis-server "${conf[@]}" --port 0 "$port_option" "$port" --bind 127.0.0.1 \
            --unixsocket "$dir/redis.sock" --unixsocketperm 700 --save "" \
            --repl-diskless-sync-delay 0 \
            --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" "$@"
        if wait_until 3 redis-cli -s "$dir/redis.sock" ping; then
            echo "$port" >"$dir/port"
            return 0
        fi
        stop_redis "$dir"
        rm -f "$dir/port"
    done
    echo "could not start a redis-server in $dir" >&2
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
job_count() { qcli "$1" --scan --pattern "{$WORKQ_NAMESPACE:$1}:job:*" | wc -l; }

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
