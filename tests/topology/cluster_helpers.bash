# Helpers of the Redis Cluster tests (tests/topology/cluster*.bats): a real cluster on loopback
# for each test file, torn down by pid: six `redis-server --cluster-enabled yes` (three masters
# and a replica of each), made with `redis-cli --cluster create ... --cluster-replicas 1`.
# Each node also listens on a Unix socket in its own directory; the checks use it (rcli reads
# the master of one queue's slot: use_queue_node). The tools reach the cluster only through
# $CLUSTER_URL (two seeds).
#
# Layout under $CLUSTER (= $BATS_FILE_TMPDIR/cluster): n1/ ... n6/ (port, redis.sock, redis.pid,
# redis.log, nodes.conf).
#
# A node timeout of 2 s: a killed master's replica is promoted a few seconds later.

# The command-line suite (tests/cli/helpers.bash, WORKQ_TEST_TOPOLOGY=cluster) takes only the
# cluster's own functions: they need no more than tests/cli/helpers.bash.
[ -n "${WORKQ_CLUSTER_NODES_ONLY:-}" ] ||
    source "$(dirname "${BASH_SOURCE[0]}")/topology_helpers.bash"

CLUSTER_NODE_TIMEOUT_MS=2000
CLUSTER_NODES=(n1 n2 n3 n4 n5 n6)

cluster_port() { cat "$CLUSTER/$1/port"; }
cluster_socket() { echo "$CLUSTER/$1/redis.sock"; }
ccli() {
    local node=$1
    shift
    redis-cli -s "$(cluster_socket "$node")" "$@"
}

# cluster_node_start NAME: a cluster-enabled redis-server in $CLUSTER/NAME on a free port. With
# CLUSTER_CERTS (a directory: ca.crt, server.crt, server.key), TLS only: clients, the cluster
# bus and replication (tls-cluster, tls-replication); no client certificates asked for.
cluster_node_start() {
    local tls=()
    [ -z "${CLUSTER_CERTS:-}" ] || tls=(--tls --tls-cert-file "$CLUSTER_CERTS/server.crt"
        --tls-key-file "$CLUSTER_CERTS/server.key" --tls-ca-cert-file "$CLUSTER_CERTS/ca.crt"
        --tls-auth-clients no --tls-cluster yes --tls-replication yes)
    redis_node_start "${tls[@]:0:1}" "$CLUSTER/$1" --cluster-enabled yes \
        --cluster-config-file "$CLUSTER/$1/nodes.conf" --cluster-node-timeout "$CLUSTER_NODE_TIMEOUT_MS" \
        --appendonly no "${tls[@]:1}"
}

# cluster_ok NODE: the node says cluster_state:ok and knows every slot.
cluster_node_ok() {
    local info
    info=$(ccli "$1" cluster info | tr -d '\r') || return 1
    grep -q '^cluster_state:ok$' <<<"$info" && grep -q '^cluster_slots_ok:16384$' <<<"$info" &&
        grep -q '^cluster_known_nodes:6$' <<<"$info"
}
cluster_all_ok() {
    local node
    for node in "$@"; do cluster_node_ok "$node" || return 1; done
}

# cluster_replicas_in_sync: every replica's link to its master is up.
cluster_replicas_in_sync() {
    local node
    for node in "${CLUSTER_NODES[@]}"; do
        [ -f "$CLUSTER/$node/redis.pid" ] || continue
        [ "$(ccli "$node" role | head -1)" = slave ] || continue
        ccli "$node" info replication | tr -d '\r' | grep -q '^master_link_status:up$' || return 1
    done
}

# cluster_start: six nodes, the cluster created (three masters with a replica each), every
# node agreeing it is ok. Sets CLUSTER_URL (two seeds: n1 and n2).
cluster_start() {
    export CLUSTER="$BATS_FILE_TMPDIR/cluster"
    mkdir -p "$CLUSTER"
    local node addresses=()
    for node in "${CLUSTER_NODES[@]}"; do
        cluster_node_start "$node"
        addresses+=("127.0.0.1:$(cluster_port "$node")")
    done
    local tls=() scheme=redis
    [ -z "${CLUSTER_CERTS:-}" ] || { tls=(--tls --cacert "$CLUSTER_CERTS/ca.crt") && scheme=rediss; }
    redis-cli "${tls[@]}" --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes \
        >"$CLUSTER/create.log" 2>&1 || {
        cat "$CLUSTER/create.log" >&2
        return 1
    }
    wait_until 30 cluster_all_ok "${CLUSTER_NODES[@]}"
    wait_until 20 cluster_replicas_in_sync
    export CLUSTER_URL="$scheme://127.0.0.1:$(cluster_port n1),127.0.0.1:$(cluster_port n2)"
}

# cluster_stop: every node, by pid.
cluster_stop() {
    [ -n "${CLUSTER:-}" ] && [ -d "$CLUSTER" ] || return 0
    stop_by_pid_files "$CLUSTER"/*/redis.pid
}

# node_of_port PORT: the name of the node listening there.
node_of_port() {
    local node
    for node in "${CLUSTER_NODES[@]}"; do
        [ "$(cluster_port "$node")" = "$1" ] && echo "$node" && return 0
    done
    return 1
}

# queue_master QUEUE: the name of the node that is master of the queue's slot now.
queue_master() {
    local slot node port
    slot=$(redis-cli -s "$(cluster_socket "$(live_node)")" cluster keyslot "{$WORKQ_NAMESPACE:$1}:meta")
    # CLUSTER NODES from a live node: id host:port@bus flags master ping pong epoch state slots...
    port=$(ccli "$(live_node)" cluster nodes | awk -v slot="$slot" '
        $3 ~ /master/ && $3 !~ /fail/ {
            for (i = 9; i <= NF; i++) {
                n = split($i, r, "-")
                lo = r[1]; hi = (n == 2 ? r[2] : r[1])
                if (slot + 0 >= lo + 0 && slot + 0 <= hi + 0) { split($2, a, "[:@]"); print a[2]; exit }
            }
        }')
    node_of_port "$port"
}

# live_node: the first node whose server runs.
live_node() {
    local node
    for node in "${CLUSTER_NODES[@]}"; do
        [ -f "$CLUSTER/$node/redis.pid" ] && echo "$node" && return 0
    done
    return 1
}

# use_queue_node QUEUE: rcli (and the invariant checker) read the master of QUEUE's slot.
use_queue_node() { export WORKQ_TEST_REDIS_SOCKET=$(cluster_socket "$(queue_master "$1")"); }

# queues_on_masters N: prints N queue names whose slots are on N different masters (N <= 3).
queues_on_masters() {
    local want=$1 i=0 seen="" name node
    while [ "$(wc -w <<<"$seen")" -lt "$want" ] && [ "$i" -lt 500 ]; do
        name="q$i"
        node=$(queue_master "$name")
        if [[ " $seen " != *" $node "* ]]; then
            seen+=" $node"
            echo "$name"
        fi
        i=$((i + 1))
    done
}

# crossslot_free: no node has answered any client CROSSSLOT (INFO errorstats counts each
# error reply by its prefix).
crossslot_free() {
    local node
    for node in "${CLUSTER_NODES[@]}"; do
        [ -f "$CLUSTER/$node/redis.pid" ] || continue
        if ccli "$node" info errorstats | grep -q '^errorstat_CROSSSLOT'; then
            echo "CROSSSLOT answered by $node: $(ccli "$node" info errorstats | grep CROSSSLOT)" >&2
            # The count is the server's since its start: cleared once reported, so that on a
            # cluster shared by many tests the blame stays with the test that caused it.
            ccli "$node" config resetstat >/dev/null
            return 1
        fi
    done
}

cluster_file_setup() { cluster_start; }
cluster_file_teardown() { cluster_stop; }

cluster_setup() {
    D="$BATS_TEST_TMPDIR/d"
    mkdir -p "$D"
    WORKER_PIDS=()
    SUPERVISORS=()
    BACKGROUND_PIDS=()
    export WORKQ_NAMESPACE="c${BATS_TEST_NUMBER}x${RANDOM}"
    export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/config" XDG_STATE_HOME="$BATS_TEST_TMPDIR/state"
    unset WORKQ_CONFIG REDIS_URL WORKQ_REDIS_PASSWORD WORKQ_TEST_OWN_REDIS_DIR WORKQ_SENTINEL_PASSWORD
    export WORKQ_REDIS_URL=$CLUSTER_URL
    export WORKQ_TEST_REDIS_SOCKET=$(cluster_socket n1)
    export FAULT_LEDGER="$D/ledger" FAULT_PIDS="$D/handlers.pids"
    : >"$FAULT_LEDGER"
    : >"$FAULT_PIDS"
}

# Each test ends with no CROSSSLOT anywhere: a cross-slot call is a bug (issue 19).
cluster_teardown() {
    fault_teardown
    crossslot_free
}
