#!/usr/bin/env bats
# Redis Cluster (CONTRACT.md §10, issue 19): every tool through a cluster URL, each call routed
# to the master of its slot. One real cluster per file (cluster_helpers.bash): three masters and
# a replica of each on loopback; each test its own namespace. A CROSSSLOT answered by any node
# fails the test (cluster_teardown).

load cluster_helpers

setup_file() { cluster_file_setup; }
teardown_file() { cluster_file_teardown; }
setup() { cluster_setup; }
teardown() { cluster_teardown; }

@test "enqueue, queue ls, per-job work and status on queues of three masters" {
    local queues q
    queues=$(queues_on_masters 3)
    for q in $queues; do
        run --separate-stderr workq-enqueue "$q" a b c
        assert_success
        [ "${#lines[@]}" -eq 3 ] || fail "expected 3 ids: $output / $stderr"
        printf '%s\n' "${lines[@]}" >"$D/ids.$q"
        # The jobs are on the master of the queue's slot.
        use_queue_node "$q"
        assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:$q}:waiting:0")" 3
        run --separate-stderr workq-queue ls "$q"
        assert_success
        [ "$(grep -c waiting <<<"$output")" -eq 3 ] || fail "workq-queue ls: $output"
    done
}

@test "per-job work, --wait, --unique, priorities and delays on queues of three masters" {
    local queues q
    queues=$(queues_on_masters 3)
    for q in $queues; do
        run --separate-stderr workq-enqueue --priority 5 "$q" high
        assert_success
        echo "$output" >>"$D/ids.$q"
        run --separate-stderr workq-enqueue "$q" low
        assert_success
        echo "$output" >>"$D/ids.$q"
        run --separate-stderr workq-enqueue --unique "u-$q" "$q" once
        assert_success
        echo "$output" >>"$D/ids.$q"
        run --separate-stderr workq-enqueue --unique "u-$q" "$q" again
        assert_success
        run --separate-stderr workq-enqueue --delay 1s "$q" later
        assert_success
        echo "$output" >>"$D/ids.$q"
    done
    for q in $queues; do
        # One worker per queue, each on the master of its queue's slot; the delayed job is due
        # within a second, so --burst waits for it.
        run --separate-stderr workq-work --burst "$q" -- "$HANDLERS/ledger.sh"
        assert_success
        use_queue_node "$q"
        check_invariants "$q" "$D/ids.$q"
        # The higher priority ran before the other waiting jobs of its queue.
        assert_equal "$(grep -Ff "$D/ids.$q" "$FAULT_LEDGER" | awk '/^start/ { print $2; exit }')" "$(head -1 "$D/ids.$q")"
    done
    # --wait through a worker that runs meanwhile (persistent handler protocol is tested on a
    # single server; here the path of the result through the cluster).
    q=$(head -1 <<<"$queues")
    start_worker w "$q" -- "$HANDLERS/ledger.sh"
    run --separate-stderr timeout 30 workq-enqueue --wait "$q" waited
    assert_success
    assert_output --partial done
}

@test "queue ls/cancel/purge/pause/resume, dlq ls/show/requeue/rm, status and schedules through the cluster" {
    local queues q id
    queues=$(queues_on_masters 3)
    for q in $queues; do
        run --separate-stderr workq-enqueue "$q" a b c
        assert_success
        printf '%s\n' "${lines[@]}" >"$D/ids.$q"
        id=$(head -1 "$D/ids.$q")
        run --separate-stderr workq-queue cancel "$id"
        assert_success
        run --separate-stderr workq-queue pause "$q"
        assert_success
        run --separate-stderr workq-queue ls "$q"
        assert_success
        run --separate-stderr workq-queue resume "$q"
        assert_success
        run --separate-stderr workq-status job "$id"
        assert_success
        assert_output --partial cancelled
        # A job that fails for good becomes a dead letter.
        run --separate-stderr workq-enqueue --max-attempts 1 "$q" doomed
        assert_success
        echo "$output" >"$D/dead.$q"
        run --separate-stderr workq-work --burst "$q" -- sh -c 'read -r p; [ "$p" != doomed ]'
        assert_equal "$status" 1
        run --separate-stderr workq-dlq ls "$q"
        assert_success
        assert_output --partial "$(cat "$D/dead.$q")"
        run --separate-stderr workq-dlq show "$(cat "$D/dead.$q")"
        assert_success
        run --separate-stderr workq-dlq requeue "$q" "$(cat "$D/dead.$q")"
        assert_success
        run --separate-stderr workq-queue purge --yes "$q"
        assert_success
        run --separate-stderr workq-enqueue --max-attempts 1 "$q" doomed
        run --separate-stderr workq-work --burst "$q" -- false
        run --separate-stderr workq-dlq rm --all "$q"
        assert_success
        run --separate-stderr workq-schedule add "nightly-$q" "$q" --cron @daily x
        assert_success
    done
    run --separate-stderr workq-schedule ls
    assert_success
    for q in $queues; do assert_output --partial "nightly-$q"; done
    run --separate-stderr workq-status --json
    assert_success
    for q in $queues; do
        [ "$(jq -r --arg q "$q" '.queues[] | select(.name == $q) | .name' <<<"$output")" = "$q" ] ||
            fail "$q missing from status: $output"
    done
    run --separate-stderr workq-status
    assert_success
    run --separate-stderr workq-status --prometheus
    assert_success
    for q in $queues; do
        run --separate-stderr workq-schedule rm "nightly-$q"
        assert_success
        run --separate-stderr workq-queue rm --force "$q"
        assert_success
    done
}

# queue_of ID: the queue ($D/ids.QUEUE) that holds the job.
queue_of() { grep -lx "$1" "$D"/ids.* | sed 's/.*ids\.//'; }

@test "one worker serving three queues on three masters: every job done, strict priority between them, no CROSSSLOT" {
    local queues q first second third order
    queues=$(queues_on_masters 3)
    [ "$(wc -w <<<"$queues")" -eq 3 ] || fail "no three queues on three masters: $queues"
    read -r first second third <<<"$(echo $queues)"
    # The lowest priority first: the order of enqueueing does not make the order of the runs.
    for q in $third $second $first; do
        run --separate-stderr workq-enqueue "$q" $(seq 1 6)
        assert_success
        printf '%s\n' "${lines[@]}" >"$D/ids.$q"
    done
    # One slot: the handlers' own record of their starts is the order the worker started them
    # in (with more, two handlers starting together may write their lines either way round).
    run --separate-stderr workq-work --burst "$first,$second,$third" -- "$HANDLERS/ledger.sh"
    assert_success
    [[ "$stderr" == *"queue by queue in the order given"* ]] || fail "$stderr"
    for q in $queues; do
        use_queue_node "$q"
        check_invariants "$q" "$D/ids.$q"
    done
    # Every job of the first queue started before any of the second, and the second's before
    # any of the third.
    order=$(awk '/^start/ { print $2 }' "$FAULT_LEDGER" | while read -r id; do queue_of "$id"; done | uniq | paste -sd' ')
    assert_equal "$order" "$first $second $third"
    crossslot_free
}

# commands_served NODE: the commands clients sent the node, from INFO commandstats: the calls
# of the commands a worker sends (a script counts once; the commands a script runs inside are
# counted by Redis under their own names and are left out here, as are the test's own INFO,
# TIME, CLUSTER and CLIENT and the replica's REPLCONF).
commands_served() {
    ccli "$1" info commandstats | tr -d '\r' | awk -F'[:=,]' '
        $1 ~ /^cmdstat_(evalsha|eval|evalsha_ro|eval_ro|fcall|blpop|brpop|rpush|lpop|smembers|exists|script|config|hello|auth|select|ping)$/ { n += $3 }
        END { print n + 0 }'
}

# server_ms NODE: the node's clock, in milliseconds.
server_ms() { ccli "$1" time | tr -d '\r' | paste -sd' ' | awk '{ printf "%.0f\n", $1 * 1000 + $2 / 1000 }'; }

# command_calls NODE: each command the node served and how often (for a failure's message).
command_calls() { ccli "$1" info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ { print $1, $3 }'; }

# waiting_on NODE: a client of the node waits in BLPOP.
waiting_on() { ccli "$1" client list | grep -q 'cmd=blpop'; }

@test "an idle worker serving queues on three masters waits on each without polling: a few commands per second per node" {
    local queues q node nodes=() before=() t0=() calls elapsed rate
    queues=$(queues_on_masters 3)
    [ "$(wc -w <<<"$queues")" -eq 3 ] || fail "no three queues on three masters: $queues"
    for q in $queues; do nodes+=("$(queue_master "$q")"); done
    start_worker w "$(paste -sd, <<<"$queues")" -- "$HANDLERS/ledger.sh"
    for node in "${nodes[@]}"; do wait_until 20 waiting_on "$node"; done
    for node in "${nodes[@]}"; do
        before+=("$(commands_served "$node")")
        command_calls "$node" >"$D/calls.$node"
        t0+=("$(server_ms "$node")")
    done
    # The measuring window: an idle worker blocks 5 s per wait.
    sleep 6
    local i=0
    for node in "${nodes[@]}"; do
        calls=$(($(commands_served "$node") - before[i]))
        elapsed=$(($(server_ms "$node") - t0[i]))
        rate=$(awk -v c="$calls" -v e="$elapsed" 'BEGIN { printf "%.2f", c * 1000 / e }')
        echo "# idle load on $node: $calls commands in ${elapsed} ms ($rate/s)" >&3
        awk -v r="$rate" 'BEGIN { exit !(r <= 5) }' ||
            fail "$node served $calls commands in $elapsed ms ($rate/s): $(command_calls "$node" | diff "$D/calls.$node" - | paste -sd' ')"
        waiting_on "$node" || fail "nobody waits on $node"
        i=$((i + 1))
    done
    # Still serving every queue: a job enqueued on each is done.
    for q in $queues; do workq-enqueue "$q" x >>"$D/ids.all"; done
    wait_until 20 at_least 3 ledger_ends
    kill -TERM "$(cat "$D/w.wpid")"
    wait_exit "$(cat "$D/w.wpid")" 30
    assert_equal "$EXIT_CODE" 0
}

@test "the scripts' function library: loaded on each master that runs them, loaded again after FUNCTION FLUSH on one, FCALL and no EVALSHA" {
    ccli "$(live_node)" function list >/dev/null 2>&1 || skip "no functions on this server"
    local queues q node flushed
    queues=$(queues_on_masters 3)
    for q in $queues; do ccli "$(queue_master "$q")" config resetstat >/dev/null; done
    for q in $queues; do
        workq-enqueue "$q" a >>"$D/ids"
        ccli "$(queue_master "$q")" function list | grep -q -x 'workq_[0-9a-f]*' ||
            fail "no library on the master of $q"
    done
    # One master loses it (and its replica, by replication): tools and a worker load it again.
    flushed=$(queue_master "$(head -1 <<<"$queues")")
    ccli "$flushed" function flush >/dev/null
    for q in $queues; do workq-enqueue "$q" b >>"$D/ids"; done
    ccli "$flushed" function flush >/dev/null
    start_worker w --burst "$(paste -sd, <<<"$queues")" -- true
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    for q in $queues; do
        node=$(queue_master "$q")
        ccli "$node" function list | grep -q -x 'workq_[0-9a-f]*' || fail "no library on $node"
        assert_equal "$(ccli "$node" hget "{$WORKQ_NAMESPACE:$q}:meta" succeeded)" 2
        ccli "$node" info commandstats | grep -q '^cmdstat_fcall:' || fail "$node: no FCALL"
        ! ccli "$node" info commandstats | grep -q '^cmdstat_evalsha:' ||
            fail "$node: EVALSHA: $(ccli "$node" info commandstats | grep evalsha)"
    done
}

@test "one server of the cluster named: found to be a cluster (INFO), routed the same" {
    local q
    q=$(queues_on_masters 3 | tail -1)
    run --separate-stderr workq-enqueue --redis "redis://127.0.0.1:$(cluster_port n1)" "$q" x
    assert_success
    use_queue_node "$q"
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:$q}:waiting:0")" 1
    # A database other than 0 does not exist on a cluster.
    run --separate-stderr workq-enqueue --redis "redis://127.0.0.1:$(cluster_port n1)/1" "$q" x
    assert_equal "$status" 3
    [[ "$stderr" == *"SELECT"* ]] || fail "$stderr"
}

@test "workq-status names the cluster's masters and which one serves each queue" {
    local queues q
    queues=$(queues_on_masters 3)
    for q in $queues; do workq-enqueue "$q" x >/dev/null; done
    run --separate-stderr workq-status --json
    assert_success
    assert_equal "$(jq -r .server.topology.kind <<<"$output")" cluster
    assert_equal "$(jq -r '.server.topology.masters | length' <<<"$output")" 3
    assert_equal "$(jq -r '[.server.topology.masters[].slots] | add' <<<"$output")" 16384
    for q in $queues; do
        local port
        port=$(cluster_port "$(queue_master "$q")")
        assert_equal "$(jq -r --arg q "$q" '.queues[] | select(.name == $q) | .node' <<<"$output")" "127.0.0.1:$port"
        assert_equal "$(jq -r --arg q "$q" '.queues[] | select(.name == $q) | .slot' <<<"$output")" \
            "$(ccli n1 cluster keyslot "{$WORKQ_NAMESPACE:$q}:meta")"
        assert_equal "$(jq -r --arg q "$q" --arg a "127.0.0.1:$port" \
            '.server.topology.masters[] | select(.address == $a) | .queues | index($q) != null' <<<"$output")" true
    done
    run --separate-stderr workq-status
    assert_success
    for q in $queues; do
        assert_output --partial "cluster master 127.0.0.1:$(cluster_port "$(queue_master "$q")"): "
    done
}

# ledger_ends: how many handler runs reached their end.
ledger_ends() { grep -c '^end' "$FAULT_LEDGER" || true; }

# queue_moved QUEUE NODE: a live master other than NODE serves QUEUE's slot.
queue_moved() {
    local now
    now=$(queue_master "$1") && [ -n "$now" ] && [ "$now" != "$2" ]
}

# cluster_recovered: every live node says the cluster is ok.
cluster_recovered() {
    local node
    for node in "${CLUSTER_NODES[@]}"; do
        [ -f "$CLUSTER/$node/redis.pid" ] || continue
        ccli "$node" cluster info | tr -d '\r' | grep -q '^cluster_state:ok$' || return 1
    done
}

# move_slot SLOT FROM TO: moves a slot between two masters the way redis-cli --cluster reshard
# does (IMPORTING/MIGRATING, MIGRATE of its keys, SETSLOT NODE on every master).
move_slot() {
    local slot=$1 from=$2 to=$3 from_id to_id keys
    from_id=$(ccli "$from" cluster myid)
    to_id=$(ccli "$to" cluster myid)
    ccli "$to" cluster setslot "$slot" importing "$from_id" >/dev/null
    ccli "$from" cluster setslot "$slot" migrating "$to_id" >/dev/null
    while keys=$(ccli "$from" cluster getkeysinslot "$slot" 100) && [ -n "$keys" ]; do
        ccli "$from" migrate 127.0.0.1 "$(cluster_port "$to")" "" 0 5000 keys $keys >/dev/null
    done
    assign_slot "$slot" "$to"
}

# assign_slot SLOT TO: the migration's end, SETSLOT NODE on every live master, the target TO
# first, as redis-cli does (the source then answers MOVED, not ASK).
assign_slot() {
    local slot=$1 to=$2 to_id node
    to_id=$(ccli "$to" cluster myid)
    ccli "$to" cluster setslot "$slot" node "$to_id" >/dev/null
    for node in "${CLUSTER_NODES[@]}"; do
        [ -f "$CLUSTER/$node/redis.pid" ] && [ "$(ccli "$node" role | head -1)" = master ] || continue
        ccli "$node" cluster setslot "$slot" node "$to_id" >/dev/null
    done
}

# other_master_for QUEUE: sets from (the queue's master), to (another master) and slot (the
# queue's slot), for a test that moves the queue's slot.
other_master_for() {
    from=$(queue_master "$1")
    to=$(queue_master "$(queues_on_masters 2 | tail -1)")
    [ "$to" != "$from" ] || to=$(queue_master "$(queues_on_masters 3 | tail -1)")
    slot=$(ccli n1 cluster keyslot "{$WORKQ_NAMESPACE:$1}:meta")
}

@test "a queue's slot moved to another master while its worker waits: the worker follows MOVED" {
    local q from to slot
    q=$(queues_on_masters 1)
    other_master_for "$q"
    workq-enqueue "$q" first >"$D/ids"
    start_worker w "$q" -- "$HANDLERS/ledger.sh"
    wait_until 20 at_least 1 ledger_ends
    # Idle now, blocked on the queue's wake-up list on the old master.
    move_slot "$slot" "$from" "$to"
    assert_equal "$(queue_master "$q")" "$to"
    workq-enqueue "$q" second >>"$D/ids"
    wait_until 30 at_least 2 ledger_ends
    use_queue_node "$q"
    check_invariants "$q" "$D/ids"
    kill -TERM "$(cat "$D/w.wpid")"
    wait_exit "$(cat "$D/w.wpid")" 30
    assert_equal "$EXIT_CODE" 0
    # Give the slot back: later tests expect the layout they found.
    move_slot "$slot" "$to" "$from"
}

@test "a master killed under load: its replica is promoted, tools and the worker follow, no job lost with --replicas 1" {
    local q victim
    q=$(queues_on_masters 1)
    victim=$(queue_master "$q")
    run --separate-stderr workq-enqueue --replicas 1 "$q" $(seq 1 40)
    assert_success
    printf '%s\n' "${lines[@]}" >"$D/ids"
    FAULT_SLEEP=0.05 start_worker w "$q" --concurrency 4 -- "$HANDLERS/ledger.sh"
    wait_until 20 at_least 5 ledger_ends
    kill -9 "$(cat "$CLUSTER/$victim/redis.pid")"
    rm -f "$CLUSTER/$victim/redis.pid"
    # Meanwhile, and after: one-shot tools find the new master by themselves.
    wait_until 30 queue_moved "$q" "$victim"
    wait_until 30 cluster_recovered
    # The new master has no replica yet: a durable enqueue says so (the jobs exist).
    run --separate-stderr workq-enqueue --replicas 1 --replicas-timeout 200ms "$q" 41
    assert_equal "$status" 1
    [[ "$stderr" == *"reached only 0 replica(s)"* ]] || fail "$stderr"
    echo "$output" >>"$D/ids"
    # The old master comes back as the new one's replica; durable enqueues work again.
    cluster_node_start "$victim"
    wait_until 30 cluster_all_ok "${CLUSTER_NODES[@]}"
    wait_until 30 cluster_replicas_in_sync
    run --separate-stderr workq-enqueue --replicas 1 "$q" $(seq 42 50)
    assert_success
    printf '%s\n' "${lines[@]}" >>"$D/ids"
    use_queue_node "$q"
    wait_until 60 all_settled "$q"
    check_invariants "$q" "$D/ids" 40
    kill -TERM "$(cat "$D/w.wpid")"
    wait_exit "$(cat "$D/w.wpid")" 30
    assert_equal "$EXIT_CODE" 0
}

# migrate_slot_slowly SLOT FROM TO: move_slot's steps by hand, BATCH (default 10) keys per
# MIGRATE with PAUSE seconds (default 0.2) between batches, so that the slot stays in flux for
# a while (redis-cli --cluster reshard moves a whole range). $D/migrating exists while both
# nodes mark the slot (MIGRATING, IMPORTING); $D/migrated once every master names the target.
migrate_slot_slowly() {
    local slot=$1 from=$2 to=$3 batch=${BATCH:-10} pause=${PAUSE:-0.2} from_id to_id keys node
    from_id=$(ccli "$from" cluster myid)
    to_id=$(ccli "$to" cluster myid)
    ccli "$to" cluster setslot "$slot" importing "$from_id" >/dev/null
    ccli "$from" cluster setslot "$slot" migrating "$to_id" >/dev/null
    touch "$D/migrating"
    while keys=$(ccli "$from" cluster getkeysinslot "$slot" "$batch") && [ -n "$keys" ]; do
        ccli "$from" migrate 127.0.0.1 "$(cluster_port "$to")" "" 0 5000 keys $keys >>"$D/migrate.log"
        sleep "$pause"
    done
    rm -f "$D/migrating"
    assign_slot "$slot" "$to"
    touch "$D/migrated"
}

# enqueue_loop QUEUE: one job per workq-enqueue until $D/stop exists; the ids printed go to
# $D/loop.ids, the attempts that failed (nothing made: TRYAGAIN after the retries) to
# $D/loop.failed with their stderr in $D/loop.err.
enqueue_loop() {
    local i=0 id
    while [ ! -e "$D/stop" ]; do
        i=$((i + 1))
        if id=$(workq-enqueue "$1" "loop-$i" 2>>"$D/loop.err"); then
            echo "$id" >>"$D/loop.ids"
        else
            echo "$i" >>"$D/loop.failed"
        fi
    done
}

@test "a busy queue's slot migrated live (MIGRATING/IMPORTING, MIGRATE in batches) while jobs flow: nothing lost, no CROSSSLOT, status shows it, workers keep going" {
    local q from to slot
    q=$(queues_on_masters 1)
    other_master_for "$q"
    # A backlog (keys to move), two workers, and a producer that does not stop.
    run --separate-stderr workq-enqueue "$q" $(seq 1 200)
    assert_success
    printf '%s\n' "${lines[@]}" >"$D/ids"
    FAULT_SLEEP=0.1 start_worker w1 "$q" --concurrency 2 -- "$HANDLERS/ledger.sh"
    FAULT_SLEEP=0.1 start_worker w2 "$q" --concurrency 2 -- "$HANDLERS/ledger.sh"
    background enqueue_loop "$q"
    local producer=$LAST_BACKGROUND
    wait_until 30 at_least 20 ledger_ends
    wait_until 30 has_lines "$D/loop.ids" 3
    background migrate_slot_slowly "$slot" "$from" "$to"
    local mover=$LAST_BACKGROUND
    wait_until 10 test -e "$D/migrating"
    # workq-status shows the migration (read before the counts, which wait for the slot).
    run --separate-stderr workq-status --json
    assert_success
    assert_equal "$(jq -r --argjson s "$slot" '.server.topology.migrations[] | select(.slot == $s) | .from' <<<"$output")" \
        "127.0.0.1:$(cluster_port "$from")"
    assert_equal "$(jq -r --argjson s "$slot" '.server.topology.migrations[] | select(.slot == $s) | .to' <<<"$output")" \
        "127.0.0.1:$(cluster_port "$to")"
    assert_equal "$(jq -r --arg q "$q" '.queues[] | select(.name == $q) | .migrating.to' <<<"$output")" \
        "127.0.0.1:$(cluster_port "$to")"
    wait_until 60 test -e "$D/migrated"
    wait "$mover"
    assert_equal "$(queue_master "$q")" "$to"
    # The producer and the workers go on on the new master.
    local before
    before=$(wc -l <"$D/loop.ids")
    wait_until 30 has_lines "$D/loop.ids" $((before + 5))
    touch "$D/stop"
    wait_until 30 process_gone "$producer"
    cat "$D/loop.ids" >>"$D/ids"
    workq-enqueue "$q" after-1 after-2 >>"$D/ids"
    use_queue_node "$q"
    wait_until 90 all_settled "$q"
    # Every job made ran to its end exactly once; an enqueue that failed made nothing.
    check_invariants "$q" "$D/ids"
    assert_equal "$(count_in_state "$q" succeeded)" "$(wc -l <"$D/ids")"
    if [ -s "$D/loop.failed" ]; then
        grep -q TRYAGAIN "$D/loop.err" || fail "$(cat "$D/loop.err")"
    fi
    assert_equal "$(ccli "$from" cluster countkeysinslot "$slot")" 0
    # No script wrote on the wrong side: every MIGRATE found its keys and the target free of
    # them (no BUSYKEY).
    if grep -qv '^OK$' "$D/migrate.log"; then fail "MIGRATE: $(sort | uniq -c <"$D/migrate.log")"; fi
    # The status after: no migration left.
    run --separate-stderr workq-status --json
    assert_success
    assert_equal "$(jq -r '.server.topology.migrations | length' <<<"$output")" 0
    local worker
    for worker in w1 w2; do
        alive "$(cat "$D/$worker.wpid")"
        kill -TERM "$(cat "$D/$worker.wpid")"
        wait_exit "$(cat "$D/$worker.wpid")" 30
        assert_equal "$EXIT_CODE" 0
    done
    # Give the slot back: later tests expect the layout they found.
    move_slot "$slot" "$to" "$from"
}

# all_succeeded QUEUE FILE: every job whose id is in FILE succeeded (read on QUEUE's master).
all_succeeded() {
    local node
    node=$(queue_master "$1")
    [ "$(awk -v p="{$WORKQ_NAMESPACE:$1}:" '{ printf "HGET \"%sjob:%s\" state\n", p, $1 }' "$2" |
        ccli "$node" | grep -cx succeeded)" -eq "$(wc -l <"$2")" ]
}

# flux_cancel SLOT FROM TO: the migration begun by hand ends where it began (nothing moved).
flux_cancel() {
    ccli "$3" cluster setslot "$1" stable >/dev/null
    ccli "$2" cluster setslot "$1" stable >/dev/null
}

@test "a worker serving two queues of two masters while the first one's slot is in flux: the second's jobs are claimed meanwhile, the first's once the move is called off" {
    local queues a b c from to slot
    queues=$(queues_on_masters 3)
    [ "$(wc -w <<<"$queues")" -eq 3 ] || fail "no three queues on three masters: $queues"
    read -r a b c <<<"$(echo $queues)"
    from=$(queue_master "$a")
    to=$(queue_master "$c")
    slot=$(ccli n1 cluster keyslot "{$WORKQ_NAMESPACE:$a}:meta")
    # A job of the first queue run: its keys exist on its master, so that in flux a claim there
    # finds some of its keys and not the others (TRYAGAIN, again and again until the move ends).
    workq-enqueue "$a" first >"$D/ids.a"
    start_worker w "$a,$b" --concurrency 2 -- "$HANDLERS/ledger.sh"
    wait_until 20 at_least 1 ledger_ends
    ccli "$to" cluster setslot "$slot" importing "$(ccli "$from" cluster myid)" >/dev/null
    ccli "$from" cluster setslot "$slot" migrating "$(ccli "$to" cluster myid)" >/dev/null
    run --separate-stderr workq-enqueue "$b" $(seq 1 6)
    assert_success
    printf '%s\n' "${lines[@]}" >"$D/ids.b"
    # The first queue's slot stays in flux (nothing moves it on) while the second's jobs run.
    wait_until 90 all_succeeded "$b" "$D/ids.b" || { flux_cancel "$slot" "$from" "$to"; fail "$(cat "$D/w.log")"; }
    ccli "$from" cluster nodes | grep -q "\[$slot->-" || { flux_cancel "$slot" "$from" "$to"; fail "the slot is no longer in flux"; }
    grep -q "claim failed: .*claiming from $a again in" "$D/w.log" || { flux_cancel "$slot" "$from" "$to"; fail "$(cat "$D/w.log")"; }
    flux_cancel "$slot" "$from" "$to"
    workq-enqueue "$a" second third >>"$D/ids.a"
    wait_until 60 all_succeeded "$a" "$D/ids.a"
    grep -q "claims from $a work again" "$D/w.log" || fail "$(cat "$D/w.log")"
    use_queue_node "$a"
    check_invariants "$a" "$D/ids.a"
    use_queue_node "$b"
    check_invariants "$b" "$D/ids.b"
    crossslot_free
    kill -TERM "$(cat "$D/w.wpid")"
    wait_exit "$(cat "$D/w.wpid")" 30
    assert_equal "$EXIT_CODE" 0
}

@test "a master killed while 4 workers serve 4 queues of every master: every job reaches an outcome, none lost with --replicas 1" {
    local queues q victim i list
    queues=$(queues_on_masters 3)
    [ "$(wc -w <<<"$queues")" -eq 3 ] || fail "no three queues on three masters: $queues"
    victim=$(queue_master "$(head -1 <<<"$queues")")
    # A fourth queue, on the victim too: two queues lose their master at once.
    for i in $(seq 500 999); do
        if [ "$(queue_master "q$i")" = "$victim" ]; then
            queues+=$'\n'"q$i"
            break
        fi
    done
    [ "$(wc -l <<<"$queues")" -eq 4 ] || fail "no fourth queue: $queues"
    for q in $queues; do
        run --separate-stderr workq-enqueue --replicas 1 "$q" $(seq 1 30)
        assert_success
        printf '%s\n' "${lines[@]}" >"$D/ids.$q"
    done
    # Each worker serves every queue, each in another order (each queue is some worker's first).
    list=($queues)
    for i in 0 1 2 3; do
        FAULT_SLEEP=0.05 start_worker "w$i" --concurrency 2 --lease 5s \
            "${list[i]},${list[(i + 1) % 4]},${list[(i + 2) % 4]},${list[(i + 3) % 4]}" -- "$HANDLERS/ledger.sh"
    done
    wait_until 30 at_least 10 ledger_ends
    kill -9 "$(cat "$CLUSTER/$victim/redis.pid")"
    rm -f "$CLUSTER/$victim/redis.pid"
    wait_until 30 queue_moved "$(head -1 <<<"$queues")" "$victim"
    wait_until 30 cluster_recovered
    # More work after the failover, on every queue (no replica yet where the victim was: not durable).
    for q in $queues; do
        run --separate-stderr workq-enqueue "$q" after-1 after-2
        assert_success
        printf '%s\n' "${lines[@]}" >>"$D/ids.$q"
    done
    # The old master comes back as a replica: later tests find six nodes.
    cluster_node_start "$victim"
    wait_until 30 cluster_all_ok "${CLUSTER_NODES[@]}"
    for q in $queues; do
        use_queue_node "$q"
        wait_until 90 all_settled "$q"
    done
    for q in $queues; do
        use_queue_node "$q"
        check_invariants "$q" "$D/ids.$q" 30
    done
    for i in 0 1 2 3; do kill -TERM "$(cat "$D/w$i.wpid")"; done
    for i in 0 1 2 3; do
        wait_exit "$(cat "$D/w$i.wpid")" 30
        assert_equal "$EXIT_CODE" 0
    done
    crossslot_free
}
