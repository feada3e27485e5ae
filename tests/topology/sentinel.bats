#!/usr/bin/env bats
# Redis Sentinel (CONTRACT.md §10, issue 18): every tool through a redis+sentinel:// URL, the
# sentinels asked in turn, ROLE = master required before anything else. A real deployment per
# test (topology_helpers.bash): a master, a replica and three redis-sentinel on loopback.

load topology_helpers

setup() { topology_setup; }
teardown() { topology_teardown; }

@test "every tool works through a redis+sentinel:// URL" {
    run --separate-stderr workq-enqueue q a b c
    assert_success
    [ "${#lines[@]}" -eq 3 ] || fail "expected 3 ids: $output"
    printf '%s\n' "${lines[@]}" >"$D/ids"
    # The jobs are on the master the sentinels name.
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 3
    run --separate-stderr workq-queue ls q
    assert_success
    [ "$(grep -c waiting <<<"$output")" -eq 3 ] || fail "workq-queue ls: $output"
    run --separate-stderr workq-queue pause q
    assert_success
    run --separate-stderr workq-queue resume q
    assert_success
    run --separate-stderr workq-work --burst q -- "$HANDLERS/ledger.sh"
    assert_success
    run --separate-stderr workq-status job "$(head -1 "$D/ids")"
    assert_success
    assert_output --partial succeeded
    run --separate-stderr workq-status --json
    assert_success
    assert_equal "$(jq -r '.queues[] | select(.name == "q") | .succeeded' <<<"$output")" 3
    # The topology: which master the sentinels named, which sentinel answered, the replica.
    assert_equal "$(jq -r .server.topology.kind <<<"$output")" sentinel
    assert_equal "$(jq -r .server.topology.master_name <<<"$output")" "$MASTER_NAME"
    assert_equal "$(jq -r .server.topology.master <<<"$output")" "127.0.0.1:$(topo_port node1)"
    assert_equal "$(jq -r '.server.topology.sentinels | length' <<<"$output")" 3
    assert_equal "$(jq -r '.server.topology.replicas[0].address' <<<"$output")" "127.0.0.1:$(topo_port node2)"
    assert_equal "$(jq -r '.server.topology.replicas[0].in_sync' <<<"$output")" true
    run --separate-stderr workq-status
    assert_success
    assert_output --partial "sentinel: master $MASTER_NAME at 127.0.0.1:$(topo_port node1) (named by sentinel 127.0.0.1:"
    assert_output --partial "replica 127.0.0.1:$(topo_port node2): online, in sync"
    run --separate-stderr workq-status --prometheus
    assert_success
    assert_line 'workq_replicas{in_sync="true"} 1'
    assert_line 'workq_replicas{in_sync="false"} 0'
    run --separate-stderr workq-dlq ls q
    assert_success
    run --separate-stderr workq-schedule add nightly q --cron @daily x
    assert_success
    run --separate-stderr workq-schedule ls
    assert_success
    assert_output --partial nightly
    run --separate-stderr workq-schedule rm nightly
    assert_success
    run --separate-stderr workq-status --check q
    assert_success
    assert_output --partial "replicas_in_sync=1"
    check_invariants q "$D/ids"
}

@test "discovery: a dead sentinel is passed over; a master name nobody watches and a server that is no master are refused" {
    topo_kill s1
    # And one that never existed, first in the list.
    local url="redis+sentinel://127.0.0.1:$(free_port),127.0.0.1:$(topo_port s1),127.0.0.1:$(topo_port s2),127.0.0.1:$(topo_port s3)/$MASTER_NAME"
    run --separate-stderr workq-enqueue --redis "$url" q x
    assert_success
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 1

    # A name no sentinel watches: exit 3 at once, saying so.
    run --separate-stderr workq-enqueue --redis "${SENTINEL_URL%/*}/nosuch" q x
    assert_equal "$status" 3
    [[ "$stderr" == *"watches no master named 'nosuch'"* ]] || fail "$stderr"

    # A second name on one sentinel, for the replica: a server that answers ROLE as replica is
    # never used, and the tool gives up within 10 s.
    scli s2 sentinel monitor wrong 127.0.0.1 "$(topo_port node2)" 2 >/dev/null
    local start=$SECONDS
    run --separate-stderr workq-enqueue --redis "redis+sentinel://127.0.0.1:$(topo_port s2)/wrong" q x
    assert_equal "$status" 3
    [ $((SECONDS - start)) -le 10 ] || fail "took $((SECONDS - start)) s"
    [[ "$stderr" == *"answers ROLE as replica"* ]] || fail "$stderr"
    # Nothing was sent to it (a replica refuses writes anyway: the check is that we never tried).
    run redis-cli -s "$(topo_socket node2)" info commandstats
    [[ "$output" != *cmdstat_evalsha* && "$output" != *cmdstat_eval:* && "$output" != *cmdstat_fcall* ]] ||
        fail "a script reached the replica"
}

# master_has_no_replica: the master (rcli) lists no replica.
master_has_no_replica() { rcli info replication | tr -d '\r' | grep -q '^connected_slaves:0$'; }

@test "--replicas: 1 of 1 replica is enough; 2 of 1 is exit 1 with the ids printed and the shortfall named; --check warns without a replica in sync" {
    run --separate-stderr workq-enqueue --replicas 1 q a b
    assert_success
    [ "${#lines[@]}" -eq 2 ] || fail "$output"
    printf '%s\n' "${lines[@]}" >"$D/ids"
    # The replica has them.
    assert_equal "$(redis-cli -s "$(topo_socket node2)" llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 2
    run --separate-stderr workq-enqueue --replicas 2 --replicas-timeout 300ms q c
    assert_equal "$status" 1
    [ "${#lines[@]}" -eq 1 ] || fail "the id is not printed: $output"
    echo "$output" >>"$D/ids"
    [[ "$stderr" == *"--replicas 2: 1 job(s) reached only 1 replica(s) within 300ms"* ]] || fail "$stderr"
    check_invariants q "$D/ids"
    # The replica gone: --replicas 1 falls short, and --check warns that no replica is in sync.
    topo_kill node2
    run --separate-stderr workq-enqueue --replicas 1 --replicas-timeout 300ms q d
    assert_equal "$status" 1
    [[ "$stderr" == *"reached only 0 replica(s)"* ]] || fail "$stderr"
    wait_until 5 master_has_no_replica
    run --separate-stderr workq-status --check --no-server-warnings q
    assert_equal "$status" 1
    assert_output --partial "WARNING: no replica is attached to the master"
    assert_output --partial "replicas_in_sync=0"
    # The master told to refuse writes without a replica in sync (min-replicas-to-write, as the
    # README describes): a tool says so and exits 3; nothing is made.
    rcli config set min-replicas-to-write 1 >/dev/null
    run --separate-stderr workq-enqueue q e
    assert_equal "$status" 3
    [[ "$stderr" == *NOREPLICAS* ]] || fail "$stderr"
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 4
}

@test "all sentinels down: exit 3 within 10 s, naming each sentinel and why" {
    topo_kill s1
    topo_kill s2
    topo_kill s3
    local start=$SECONDS
    run --separate-stderr workq-enqueue q x
    assert_equal "$status" 3
    [ $((SECONDS - start)) -le 10 ] || fail "took $((SECONDS - start)) s"
    assert_equal "$output" ""
    for s in s1 s2 s3; do
        [[ "$stderr" == *"sentinel 127.0.0.1:$(topo_port $s)"* ]] || fail "$s is not named: $stderr"
    done
    assert_equal "$(rcli dbsize)" 0
}

@test "the sentinel password comes from WORKQ_SENTINEL_PASSWORD or the config, the master's from the URL" {
    # The master and its replica want a password, which the sentinels know (auth-pass); the
    # sentinels want one of their own.
    local s node
    for node in node1 node2; do
        redis-cli -s "$(topo_socket $node)" config set masterauth masterpw >/dev/null
        redis-cli -s "$(topo_socket $node)" config set requirepass masterpw >/dev/null
    done
    for s in s1 s2 s3; do
        scli "$s" sentinel set "$MASTER_NAME" auth-pass masterpw >/dev/null
        scli "$s" acl setuser default resetpass '>sentinelpw' >/dev/null
    done
    local url="redis+sentinel://:masterpw@${SENTINEL_URL#redis+sentinel://}"
    # Without the sentinels' password, every one refuses.
    run --separate-stderr workq-enqueue --redis "$url" q x
    assert_equal "$status" 3
    [[ "$stderr" == *NOAUTH* || "$stderr" == *"log in"* ]] || fail "$stderr"
    WORKQ_SENTINEL_PASSWORD=sentinelpw run --separate-stderr workq-enqueue --redis "$url" q x
    assert_success
    [[ "$stderr" != *masterpw* && "$stderr" != *sentinelpw* ]] || fail "a password is shown: $stderr"
    assert_equal "$(rcli -a masterpw --no-auth-warning llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 1
    # Or the config file's sentinel_password_file.
    echo sentinelpw >"$BATS_TEST_TMPDIR/spw"
    mkdir -p "$XDG_CONFIG_HOME/workq"
    printf '[redis]\nsentinel_password_file = "%s"\n' "$BATS_TEST_TMPDIR/spw" >"$XDG_CONFIG_HOME/workq/config.toml"
    WORKQ_REDIS_URL=$url run --separate-stderr workq-enqueue q y
    assert_success
    assert_equal "$stderr" ""
    # A worker's handlers see neither password.
    make_handler env <<<'env >>"$D_ENV"' >/dev/null
    D_ENV="$D/env.txt" WORKQ_SENTINEL_PASSWORD=sentinelpw run --separate-stderr \
        workq-work --burst --redis "$url" q -- "$D/env"
    assert_success
    grep -q WORKQ_JOB_ID "$D/env.txt" || fail "the handler did not run"
    ! grep -q -e sentinelpw -e masterpw "$D/env.txt" || fail "a handler saw a password"
}
