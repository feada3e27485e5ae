# Helpers of the topology suite (tests/topology): a Redis Sentinel deployment on loopback, made
# for each test and torn down by pid: a master, a replica and three redis-sentinel processes
# (quorum 2, down-after-milliseconds 1000, so that a failover takes a few seconds). Each server
# also listens on a Unix socket in its own directory, which the checks use (rcli follows the
# current master: use_master). The tools reach the deployment only through $SENTINEL_URL.
#
# Layout under $TOPO (= $BATS_TEST_TMPDIR/topo): node1/ node2/ (redis-server: port, redis.sock,
# redis.pid, redis.log) and s1/ s2/ s3/ (redis-sentinel: port, sentinel.conf, sentinel.pid,
# sentinel.log).
#
# The servers and sentinels run the README's example configuration (examples/sentinel), with
# loopback addresses, free ports, the test's directories and a down-after-milliseconds of 1 s.

source "$BATS_TEST_DIRNAME/../fault/fault_helpers.bash"

MASTER_NAME=${MASTER_NAME:-wq}
EXAMPLE_DIR="$BATS_TEST_DIRNAME/../../examples/sentinel"
SENTINEL_DOWN_AFTER_MS=1000

# topo_node_start NAME [ARGS...]: a redis-server of examples/sentinel/redis.conf in $TOPO/NAME on
# a free port (appendonly there, so that a restart keeps its data, as a real deployment's would).
topo_node_start() {
    local name=$1
    shift
    local dir="$TOPO/$name"
    mkdir -p "$dir"
    # Its own copy: the sentinels make it rewrite its file (CONFIG REWRITE) as they reconfigure
    # it, and a restart reads what they wrote, as in a real deployment.
    [ -f "$dir/redis.conf" ] || cp "$EXAMPLE_DIR/redis.conf" "$dir/redis.conf"
    redis_node_start "$dir" "$dir/redis.conf" "$@"
}

topo_port() { cat "$TOPO/$1/port"; }
topo_socket() { echo "$TOPO/$1/redis.sock"; }

# sentinel_id NAME: the run id a sentinel of the test is given (40 hex digits), so that each
# can be told about the others before it starts.
sentinel_id() { printf '%s' "$TOPO/$1" | sha1sum | cut -c1-40; }

# topo_sentinel_start NAME: a redis-sentinel of examples/sentinel/sentinel.conf in $TOPO/NAME
# watching node1 as $MASTER_NAME. It is told the replica and the other sentinels (those whose
# port is chosen already): found by themselves, through the master's hello channel and INFO,
# they take seconds.
topo_sentinel_start() {
    local name=$1 dir="$TOPO/$1" port attempt other
    mkdir -p "$dir"
    for attempt in 1 2 3 4 5; do
        port=$(cat "$dir/port" 2>/dev/null || free_port)
        if [ ! -f "$dir/sentinel.conf" ] || [ "$attempt" -gt 1 ]; then
            # The sentinel rewrites this file as it learns (replicas, other sentinels, epochs).
            sed -E -e '/^port /d' \
                -e "s/^(sentinel monitor mymaster) [^ ]+ [0-9]+ /\\1 127.0.0.1 $(topo_port node1) /" \
                -e "s/^(sentinel down-after-milliseconds mymaster) [0-9]+/\\1 $SENTINEL_DOWN_AFTER_MS/" \
                -e "s/^(sentinel failover-timeout mymaster) [0-9]+/\\1 10000/" \
                -e "s/ mymaster / $MASTER_NAME /" "$EXAMPLE_DIR/sentinel.conf" >"$dir/sentinel.conf"
            cat >>"$dir/sentinel.conf" <<EOF
port $port
bind 127.0.0.1
daemonize yes
pidfile $dir/sentinel.pid
logfile $dir/sentinel.log
dir $dir
sentinel myid $(sentinel_id "$name")
sentinel known-replica $MASTER_NAME 127.0.0.1 $(topo_port node2)
EOF
            for other in s1 s2 s3; do
                [ "$other" != "$name" ] && [ -f "$TOPO/$other/port" ] || continue
                echo "sentinel known-sentinel $MASTER_NAME 127.0.0.1 $(topo_port "$other") $(sentinel_id "$other")" >>"$dir/sentinel.conf"
            done
        fi
        rm -f "$dir/sentinel.pid"
        redis-sentinel "$dir/sentinel.conf"
        if wait_until 3 redis-cli -p "$port" ping; then
            echo "$port" >"$dir/port"
            return 0
        fi
        [ -f "$dir/sentinel.pid" ] && kill "$(cat "$dir/sentinel.pid")" 2>/dev/null
        rm -f "$dir/port"
    done
    echo "could not start redis-sentinel $name" >&2
    return 1
}

# scli SENTINEL ARGS...: redis-cli against one sentinel (s1, s2, s3).
scli() {
    local name=$1
    shift
    redis-cli -p "$(topo_port "$name")" "$@"
}

# sentinel_ready NAME: the sentinel knows the replica and both other sentinels, so that it can
# vote and fail over.
sentinel_ready() {
    local info
    info=$(scli "$1" sentinel master "$MASTER_NAME" | paste - -) || return 1
    grep -qP '^num-slaves\t1$' <<<"$info" && grep -qP '^num-other-sentinels\t2$' <<<"$info"
}

# topology_start: master node1, replica node2, sentinels s1..s3; returns once every sentinel is
# ready and the replica is in sync. Sets SENTINEL_URL and points rcli at the master.
topology_start() {
    TOPO="$BATS_TEST_TMPDIR/topo"
    mkdir -p "$TOPO"
    topo_node_start node1
    topo_node_start node2 --replicaof 127.0.0.1 "$(topo_port node1)"
    local s
    # Ports first, so that each sentinel's configuration names the others.
    for s in s1 s2 s3; do
        mkdir -p "$TOPO/$s"
        free_port >"$TOPO/$s/port"
    done
    for s in s1 s2 s3; do topo_sentinel_start "$s"; done
    for s in s1 s2 s3; do wait_until 20 sentinel_ready "$s"; done
    wait_until 10 replica_in_sync node2
    export SENTINEL_URL="redis+sentinel://127.0.0.1:$(topo_port s1),127.0.0.1:$(topo_port s2),127.0.0.1:$(topo_port s3)/$MASTER_NAME"
    use_master node1
}

# replica_in_sync NODE: the node is a replica whose link to its master is up.
replica_in_sync() {
    redis-cli -s "$(topo_socket "$1")" info replication | tr -d '\r' | grep -q '^master_link_status:up$'
}

# use_master NODE: rcli (and so the invariant checker) reads NODE.
use_master() { export WORKQ_TEST_REDIS_SOCKET=$(topo_socket "$1"); }

# role_of NODE: master or slave, as the node says.
node_role() { redis-cli -s "$(topo_socket "$1")" role 2>/dev/null | head -1; }

# sentinels_name NODE: every sentinel names NODE as the master.
sentinels_name() {
    local s port
    port=$(topo_port "$1")
    for s in s1 s2 s3; do
        [ "$(scli "$s" sentinel get-master-addr-by-name "$MASTER_NAME" | tail -1)" = "$port" ] ||
            return 1
    done
}

# topo_kill NAME: kill -9 of a node or a sentinel (its directory and configuration stay, for a
# restart).
topo_kill() {
    local pidfile="$TOPO/$1/redis.pid"
    [ -f "$pidfile" ] || pidfile="$TOPO/$1/sentinel.pid"
    local pid
    pid=$(cat "$pidfile")
    kill -9 "$pid" 2>/dev/null || true
    wait_until 5 process_gone "$pid"
    rm -f "$pidfile"
}

# topology_stop: every server and sentinel of the test, by pid.
topology_stop() {
    [ -n "${TOPO:-}" ] && [ -d "$TOPO" ] || return 0
    stop_by_pid_files "$TOPO"/*/redis.pid "$TOPO"/*/sentinel.pid
}

topology_setup() {
    D="$BATS_TEST_TMPDIR/d"
    mkdir -p "$D"
    WORKER_PIDS=()
    SUPERVISORS=()
    BACKGROUND_PIDS=()
    export WORKQ_NAMESPACE="s${BATS_TEST_NUMBER}x${RANDOM}"
    export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/config" XDG_STATE_HOME="$BATS_TEST_TMPDIR/state"
    unset WORKQ_CONFIG REDIS_URL WORKQ_REDIS_PASSWORD WORKQ_TEST_OWN_REDIS_DIR WORKQ_SENTINEL_PASSWORD
    topology_start
    export WORKQ_REDIS_URL=$SENTINEL_URL
    export FAULT_LEDGER="$D/ledger" FAULT_PIDS="$D/handlers.pids"
    : >"$FAULT_LEDGER"
    : >"$FAULT_PIDS"
}

topology_teardown() {
    fault_teardown
    topology_stop
}
