#!/usr/bin/env bats
# Sentinel failovers (CONTRACT.md §10, issue 18): the master killed under load, demoted, or
# restarted as a stale master; workers carry on by themselves, one-shot tools follow within
# their budget. Each scenario ends with the fault suite's invariant checker.

load topology_helpers

setup() { topology_setup; }
teardown() { topology_teardown; }

# failed_over: the sentinels name node2 and it answers as master.
failed_over() { sentinels_name node2 && [ "$(node_role node2)" = master ]; }

# has_workq_library NODE: the node holds a workq function library.
has_workq_library() { redis-cli -s "$(topo_socket "$1")" function list | grep -q -x 'workq_[0-9a-f]*'; }

# succeeded_count QUEUE: the queue's succeeded counter on the current master.
succeeded_count() {
    local n
    n=$(rcli hget "{$WORKQ_NAMESPACE:$1}:meta" succeeded 2>/dev/null)
    echo "${n:-0}"
}

@test "the master killed -9 under 4 workers and 2,000 jobs: every job reaches an outcome, workers never exit" {
    # Every id printed is on the replica too: none can be lost with the master.
    seq -f 'job-%g' 2000 | workq-enqueue --replicas 1 --replicas-timeout 10s q >"$D/ids"
    assert_equal "$(wc -l <"$D/ids")" 2000
    local i
    for i in 1 2 3 4; do start_worker "w$i" -c 2 --lease 2s q -- "$HANDLERS/ledger.sh"; done
    wait_until 60 at_least 300 grep -c '^end ' "$FAULT_LEDGER"
    topo_kill node1
    wait_until 30 failed_over
    use_master node2
    wait_until 120 all_settled q
    for i in 1 2 3 4; do alive "$(cat "$D/w$i.wpid")" || fail "worker w$i exited: $(tail -5 "$D/w$i.log")"; done
    # They noticed, and found the new master.
    for i in 1 2 3 4; do assert_log "w$i" "reconnected to Redis"; done
    # Jobs whose outcome the dead master took with it run again: bounded, and counted here.
    check_invariants q "$D/ids" 200
}

@test "a stale master (the old one restarted, claiming master) gets nothing from any tool" {
    start_worker w q -- "$HANDLERS/ledger.sh"
    topo_kill node1
    wait_until 30 failed_over
    use_master node2
    # The old master comes back with its old configuration: master of nobody, until the
    # sentinels reconfigure it. Watch everything it is sent from the start.
    topo_node_start node1
    redis-cli -s "$(topo_socket node1)" monitor >"$D/stale.monitor" 2>/dev/null 3>&- &
    BACKGROUND_PIDS+=("$!")
    [ "$(node_role node1)" = master ] || skip "the sentinels reconfigured node1 before the test could look"
    local n
    for n in 1 2 3 4 5 6; do
        workq-enqueue q "after-$n" >>"$D/ids"
        workq-status --check q >/dev/null || true
    done
    wait_until 30 prints slave node_role node1
    wait_until 30 all_settled q
    alive "$(cat "$D/w.wpid")"
    # Once a replica, node1 is sent node2's writes by node2 (as plain commands: scripts are
    # replicated by their effects); the sentinels send their own. A tool's would be scripts,
    # blocking pops, script loads or queue registrations from a client of its own.
    ! grep -v "127.0.0.1:$(topo_port node2)\]" "$D/stale.monitor" |
        grep -E '"(EVALSHA|EVAL|BLPOP|SCRIPT|SADD|HSET|ZADD|RPUSH|LPUSH)"' ||
        fail "a tool talked to the stale master"
    check_invariants q "$D/ids"
}

@test "a failover by demotion (SENTINEL FAILOVER): an idle worker and later tools carry on" {
    start_worker w q -- "$HANDLERS/ledger.sh"
    workq-enqueue q before >>"$D/ids"
    wait_until 20 prints 1 succeeded_count q
    wait_until 10 blpop_clients_are 1
    # The scripts' function library (Redis >= 7) reaches the replica by replication: the new
    # master has it from its first moment.
    if redis-cli -s "$(topo_socket node1)" function list >/dev/null 2>&1; then
        wait_until 10 has_workq_library node2
    fi
    scli s1 sentinel failover "$MASTER_NAME" >/dev/null
    wait_until 30 failed_over
    use_master node2
    wait_until 30 prints slave node_role node1
    workq-enqueue q after >>"$D/ids"
    wait_until 30 prints 2 succeeded_count q
    alive "$(cat "$D/w.wpid")"
    check_invariants q "$D/ids"
}

@test "one-shot tools follow a failover: one started during it waits for the new master; one whose idle connection closed sends the rest there" {
    # A producer holding its connection open between jobs (stdin from a FIFO).
    mkfifo "$D/in" "$D/durable.in"
    workq-enqueue q <"$D/in" >"$D/producer.ids" 2>"$D/enqueue.log" 3>&- &
    local enqueue=$!
    BACKGROUND_PIDS+=("$enqueue")
    # Another with --replicas 1: its first job is on the replica before its id is printed.
    workq-enqueue --replicas 1 --replicas-timeout 300ms q <"$D/durable.in" \
        >"$D/durable.ids" 2>"$D/durable.log" 3>&- 4>&- &
    local durable=$!
    BACKGROUND_PIDS+=("$durable")
    exec 4>"$D/in" 5>"$D/durable.in"
    echo first >&4
    echo durable-first >&5
    wait_until 10 has_lines "$D/producer.ids" 1
    wait_until 10 has_lines "$D/durable.ids" 1
    [ "$(rcli wait 1 5000)" -ge 1 ]
    topo_kill node1
    # Started while the sentinels still name the dead master: it asks again until they name
    # the new one (well within its 8 s).
    run --separate-stderr workq-enqueue q during
    assert_success
    echo "$output" >>"$D/ids"
    wait_until 30 failed_over
    # The producer's connection was closed while idle: its next job goes to the new master.
    echo second >&4
    exec 4>&-
    wait_until 15 process_gone "$enqueue"
    wait "$enqueue" || fail "workq-enqueue failed: $(cat "$D/enqueue.log")"
    cat "$D/producer.ids" >>"$D/ids"
    assert_equal "$(wc -l <"$D/ids")" 3
    grep -q "asking the sentinels" "$D/enqueue.log" || fail "$(cat "$D/enqueue.log")"
    # The durable producer's next job goes to the new master too, which has no replica left:
    # its id is printed (the job exists), the shortfall named, exit 1.
    echo durable-second >&5
    exec 5>&-
    wait_until 15 process_gone "$durable"
    local code=0
    wait "$durable" || code=$?
    assert_equal "$code" 1
    assert_equal "$(wc -l <"$D/durable.ids")" 2
    grep -q "asking the sentinels" "$D/durable.log" || fail "$(cat "$D/durable.log")"
    grep -q -- "--replicas 1: 1 job(s) reached only 0 replica(s) within 300ms" "$D/durable.log" ||
        fail "$(cat "$D/durable.log")"
    cat "$D/durable.ids" >>"$D/ids"
    use_master node2
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 5
    check_invariants q "$D/ids"
}

@test "master and replica down: tools exit 3 within 10 s; a worker waits and carries on when a master is back" {
    start_worker w q -- "$HANDLERS/ledger.sh"
    wait_until 10 blpop_clients_are 1
    topo_kill node2
    topo_kill node1
    local start=$SECONDS
    run --separate-stderr workq-enqueue q x
    assert_equal "$status" 3
    [ $((SECONDS - start)) -le 10 ] || fail "took $((SECONDS - start)) s"
    [[ "$stderr" == *"no master through"* ]] || fail "$stderr"
    # The old master back (with its data): the sentinels name it still, the worker returns.
    topo_node_start node1
    use_master node1
    workq-enqueue q back >"$D/ids"
    wait_until 30 all_settled q
    alive "$(cat "$D/w.wpid")"
    check_invariants q "$D/ids"
}
