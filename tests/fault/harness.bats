#!/usr/bin/env bats
# The fault harness tests itself: each fault of the proxy really happens (a pass-through proxy
# would fail here, not turn every scenario green), and the invariant checker catches what it
# is there to catch.

load fault_helpers

setup() { fault_setup; }
teardown() { fault_teardown; }

@test "proxy: pass forwards both ways; stats count connections and bytes" {
    run pcli ping
    assert_output PONG
    pcli set k v >/dev/null
    assert_equal "$(rcli get k)" v
    [ "$(proxy_stat accepted)" -ge 2 ]
    [ "$(proxy_stat down)" -gt 0 ]
}

@test "proxy: blackhole holds connections and forwards nothing; new ones too; pass lets new ones through" {
    # A connection open before the blackhole goes silent: a BLPOP's answer never comes.
    pcli blpop wake 0 >"$D/blpop.out" 2>&1 3>&- &
    local blpop=$!
    wait_until 5 blpop_clients_are 1
    proxy_ctl blackhole
    rcli rpush wake 1 >/dev/null
    run timeout 2 redis-cli -h 127.0.0.1 -p "$PROXY_PORT" ping
    assert_equal "$status" 124
    assert_equal "$(proxy_stat held)" 2
    alive "$blpop"
    [ ! -s "$D/blpop.out" ] || fail "the held connection got an answer: $(cat "$D/blpop.out")"
    proxy_ctl pass
    run pcli ping
    assert_output PONG
    # The held connection stays dead (that peer is gone for good) until a reset.
    alive "$blpop"
    proxy_ctl reset
    wait_until 5 process_gone "$blpop"
    wait "$blpop" || true
}

@test "proxy: drop 1 loses exactly one reply: the command is applied, the connection reset, the next reply arrives" {
    proxy_ctl drop 1
    run timeout 5 redis-cli -h 127.0.0.1 -p "$PROXY_PORT" incr counter
    assert_failure
    [ "$status" -ne 124 ] || fail "a lost reply should reset the connection, not hang it"
    assert_output --partial "reset"
    assert_equal "$(rcli get counter)" 1
    run pcli incr counter
    assert_output 2
    assert_equal "$(proxy_stat dropped)" 1
}

@test "proxy: drop N TEXT picks replies by command among pipelined ones" {
    proxy_ctl drop 1 INCR b
    # Three commands pipelined in one write: the reply to the second is lost, and so is the
    # connection; the first reply arrives whole; all three commands are applied.
    exec 5<>"/dev/tcp/127.0.0.1/$PROXY_PORT"
    printf '*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n' >&5
    local replies
    replies=$(timeout 5 cat <&5 | od -An -c | tr -d ' \n' || true)
    exec 5>&-
    assert_equal "$replies" ':1\r\n'
    assert_equal "$(rcli mget a b c | tr '\n' ' ')" "1 1 1 "
    assert_equal "$(proxy_stat dropped)" 1
    assert_equal "$(proxy_stat drop_left)" 0
}

@test "proxy: reset really resets every open connection" {
    pcli blpop wake 0 >"$D/blpop.out" 2>&1 3>&- &
    local blpop=$!
    wait_until 5 blpop_clients_are 1
    proxy_ctl reset
    wait_until 5 process_gone "$blpop"
    local code=0
    wait "$blpop" || code=$?
    [ "$code" -ne 0 ] || fail "redis-cli saw no error"
    assert_equal "$(cat "$D/blpop.out")" "Error: Connection reset by peer"
    # The server lets go of it too.
    wait_until 5 blpop_clients_are 0
}

@test "proxy: refuse refuses new connections; pass listens again" {
    proxy_ctl refuse
    run pcli ping
    assert_failure
    assert_output --partial "Connection refused"
    proxy_ctl pass
    run pcli ping
    assert_output PONG
}

@test "proxy: cut N forwards exactly N bytes of replies, then resets; delay holds replies back" {
    proxy_ctl cut 3
    run pcli ping
    assert_failure
    [ "$output" != PONG ] || fail "the reply was not cut"
    assert_equal "$(proxy_stat cuts)" 1
    # One shot: the next reply is whole.
    run pcli ping
    assert_output PONG
    proxy_ctl delay 400
    local t0
    t0=$(now_ms)
    run pcli ping
    assert_output PONG
    [ $(($(now_ms) - t0)) -ge 400 ] || fail "a 400 ms delay took $(($(now_ms) - t0)) ms"
}

@test "invariants: a clean run passes; a missing job, a job in two places, a double count and too many duplicates fail" {
    enqueue_jobs q 3
    local a b c
    a=$(sed -n 1p "$D/ids")
    b=$(sed -n 2p "$D/ids")
    c=$(sed -n 3p "$D/ids")
    # Still queued: fine.
    run check_invariants q "$D/ids"
    assert_success
    start_worker w --burst --lease 1s q -- "$HANDLERS/ledger.sh"
    wait_exit "$LAST_PID" 15
    run check_invariants q "$D/ids"
    assert_success

    local p="{$WORKQ_NAMESPACE:q}:"
    # A duplicate run beyond the bound.
    echo "end $a 2" >>"$FAULT_LEDGER"
    run check_invariants q "$D/ids" 0
    assert_failure
    assert_output --partial "1 duplicate runs, at most 0 allowed"
    run check_invariants q "$D/ids" 1
    assert_success

    # Succeeded and also in the running set.
    rcli zadd "${p}running" 1 "$b" >/dev/null
    run check_invariants q "$D/ids" 1
    assert_failure
    assert_output --partial "job $b: state succeeded but found in: [running ]"
    rcli zrem "${p}running" "$b" >/dev/null

    # Counted twice.
    rcli hincrby "${p}meta" succeeded 1 >/dev/null
    run check_invariants q "$D/ids" 1
    assert_failure
    assert_output --partial "the queue counted 4 successes; 3 jobs succeeded"
    rcli hincrby "${p}meta" succeeded -1 >/dev/null

    # Missing.
    rcli del "${p}job:$c" >/dev/null
    run check_invariants q "$D/ids" 1
    assert_failure
    assert_output --partial "job $c: missing"

    # An extra job nobody enqueued, and a waiting entry twice.
    rcli hset "${p}job:$c" state waiting >/dev/null
    rcli rpush "${p}waiting:0" "$c" "$c" >/dev/null
    rcli hset "${p}job:stray" state waiting >/dev/null
    run check_invariants q "$D/ids" 1
    assert_failure
    assert_output --partial "job $c: state waiting but found in: [waiting-list(2) ]"
    assert_output --partial "4 job records, 3 were enqueued"
}

@test "invariants: a handler left running fails the check" {
    enqueue_jobs q 1
    start_worker w --lease 1s q -- "$HANDLERS/sleeper.sh"
    wait_until 10 has_lines "$FAULT_PIDS" 1
    # The job is running and its handler alive: both are violations.
    run check_invariants q "$D/ids"
    assert_failure
    assert_output --partial "not an outcome or queued"
    local handler
    handler=$(cat "$FAULT_PIDS")
    assert_output --partial "handler process $handler (group $handler) is still there"
}
