#!/usr/bin/env bats
# The embedded default (CONTRACT.md §2, issue 2): with no server configured anywhere, the tools
# start a private redis-server on a Unix socket, once, detached, and find it again from cron.
# Every test keeps the server's state and socket inside its own directory and stops the
# servers it started (by the pid in the state directory).

load helpers

setup() {
    workq_test_setup
    embedded_test_setup
    PID_FILES=("$XDG_STATE_HOME/workq/redis.pid" "$BATS_TEST_TMPDIR/home/.local/state/workq/redis.pid")
    OTHER_PIDS=()  # processes a test started that are not embedded servers: killed by pid
}

teardown() {
    stop_embedded "${PID_FILES[@]}"
    local pid
    for pid in "${OTHER_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    [ -z "${OUTSIDE_DIR:-}" ] || rm -rf "$OUTSIDE_DIR"
    # A directory a test gave away must be ours again for bats to clean it up.
    chown -R "$(id -u)" "$BATS_TEST_TMPDIR" 2>/dev/null || true
    workq_test_teardown
}

socket_of_embedded() { cat "$XDG_STATE_HOME/workq/socket"; }
ecli() { redis-cli -s "$(socket_of_embedded)" "$@"; }
redis_servers_on() { pgrep -f "redis-server.*$1" | wc -l; }

# stop_embedded_server: stops the test's embedded server (by the pid in its state directory)
# and waits until it is gone; the pid is left in STOPPED_PID.
stop_embedded_server() {
    STOPPED_PID=$(cat "$XDG_STATE_HOME/workq/redis.pid")
    kill "$STOPPED_PID"
    wait_until 10 process_gone "$STOPPED_PID"
}

# assert_refused SOCKET TEXT: workq-enqueue exits 3 with TEXT in its message, and the server on
# SOCKET (someone else's) received nothing.
assert_refused() {
    run --separate-stderr workq-enqueue q secret
    assert_equal "$status" 3
    [[ "$stderr" == *"$2"* ]] || fail "not refused: $stderr"
    assert_equal "$(redis-cli -s "$1" dbsize)" 0
}

@test "with nothing configured, a private redis-server starts on a Unix socket, no TCP port" {
    run --separate-stderr workq-enqueue q hello
    assert_success
    local id=$output
    [[ "$stderr" == *"started the embedded redis-server"* ]] || fail "no notice: $stderr"
    [[ "$stderr" == *"$XDG_RUNTIME_DIR/workq/redis.sock"* ]] || fail "the socket is not named: $stderr"

    # The socket in $XDG_RUNTIME_DIR/workq, a directory of ours alone.
    assert_equal "$(socket_of_embedded)" "$XDG_RUNTIME_DIR/workq/redis.sock"
    [ -S "$XDG_RUNTIME_DIR/workq/redis.sock" ] || fail "no socket"
    assert_equal "$(stat -c %a "$XDG_RUNTIME_DIR/workq")" 700
    assert_equal "$(stat -c %a "$XDG_STATE_HOME/workq")" 700

    # The job is on that server.
    assert_equal "$(ecli hget "{$WORKQ_NAMESPACE:q}:job:$id" payload)" hello

    # No TCP port; append-only (everysec); noeviction; data under the state directory.
    assert_equal "$(ecli config get port | sed -n 2p)" 0
    assert_equal "$(ecli config get appendonly | sed -n 2p)" yes
    assert_equal "$(ecli config get appendfsync | sed -n 2p)" everysec
    assert_equal "$(ecli config get maxmemory-policy | sed -n 2p)" noeviction
    assert_equal "$(ecli config get dir | sed -n 2p)" "$XDG_STATE_HOME/workq"
    local pid
    pid=$(cat "$XDG_STATE_HOME/workq/redis.pid")
    if command -v ss >/dev/null; then
        run ss -ltnpH
        [[ "$output" != *"pid=$pid,"* ]] || fail "the server listens on TCP: $output"
    fi
    wait_until 5 test -n "$(ls "$XDG_STATE_HOME/workq/appendonlydir" 2>/dev/null)"
}

@test "the notice is printed only when a server is started" {
    run --separate-stderr workq-enqueue q a
    assert_success
    [[ "$stderr" == *"started the embedded redis-server"* ]] || fail "no notice: $stderr"
    run --separate-stderr workq-enqueue q b
    assert_success
    assert_equal "$stderr" ""
}

@test "id=\$(workq-enqueue q x) returns at once: the server is detached and holds no pipe" {
    exec 7>"$BATS_TEST_TMPDIR/inherited"
    local start=$(now_ms) id
    id=$(timeout 10 workq-enqueue q x 2>"$BATS_TEST_TMPDIR/err")
    local rc=$? took=$(($(now_ms) - start))
    exec 7>&-
    assert_equal "$rc" 0
    [ -n "$id" ] || fail "no id"
    [ "$took" -lt 5000 ] || fail "took ${took} ms"
    # The same through a pipe whose reader waits for end of file.
    start=$(now_ms)
    timeout 10 workq-enqueue q y 2>/dev/null | cat >/dev/null
    took=$(($(now_ms) - start))
    [ "$took" -lt 5000 ] || fail "took ${took} ms"

    local pid
    pid=$(cat "$XDG_STATE_HOME/workq/redis.pid")
    # Its own session, not our child, stdin from /dev/null, no descriptor of ours.
    [ "$(ps -o sid= -p "$pid")" -ne "$(ps -o sid= -p $$)" ] || fail "the server is in our session"
    [ "$(ps -o ppid= -p "$pid" | tr -d ' ')" != "$$" ] || fail "the server is our child"
    assert_equal "$(readlink "/proc/$pid/fd/0")" /dev/null
    run ls -l "/proc/$pid/fd"
    [[ "$output" != *"$BATS_TEST_TMPDIR/inherited"* ]] || fail "the server holds our fd 7: $output"
    [[ "$output" != *"$BATS_TEST_TMPDIR/err"* ]] || fail "the server holds our stderr: $output"
}

@test "two tools started at the same moment start one server" {
    workq-enqueue q one >"$BATS_TEST_TMPDIR/out1" 2>"$BATS_TEST_TMPDIR/err1" &
    local p1=$!
    workq-enqueue q two >"$BATS_TEST_TMPDIR/out2" 2>"$BATS_TEST_TMPDIR/err2" &
    local p2=$!
    local rc1=0 rc2=0
    wait "$p1" || rc1=$?
    wait "$p2" || rc2=$?
    assert_equal "$rc1 $rc2" "0 0"
    assert_equal "$(redis_servers_on "$XDG_RUNTIME_DIR/workq/redis.sock")" 1
    assert_equal "$(cat "$BATS_TEST_TMPDIR/err1" "$BATS_TEST_TMPDIR/err2" | grep -c 'started the embedded')" 1
    assert_equal "$(ecli hget "{$WORKQ_NAMESPACE:q}:job:$(cat "$BATS_TEST_TMPDIR/out1")" payload)" one
    assert_equal "$(ecli hget "{$WORKQ_NAMESPACE:q}:job:$(cat "$BATS_TEST_TMPDIR/out2")" payload)" two
}

@test "cron (no XDG_RUNTIME_DIR, no XDG_STATE_HOME, only HOME) finds the same server" {
    export HOME="$BATS_TEST_TMPDIR/home"
    mkdir -p "$HOME"
    unset XDG_STATE_HOME
    run --separate-stderr workq-enqueue q from-shell
    assert_success
    local first=$output
    local pid
    pid=$(cat "$HOME/.local/state/workq/redis.pid")

    # What cron gives a job: HOME, PATH, a shell; nothing of the login session.
    run --separate-stderr env -i HOME="$HOME" PATH="$PATH" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
        WORKQ_NAMESPACE="$WORKQ_NAMESPACE" workq-enqueue q from-cron
    assert_success
    assert_equal "$stderr" ""
    local second=$output
    assert_equal "$(cat "$HOME/.local/state/workq/redis.pid")" "$pid"
    assert_equal "$(redis_servers_on "$XDG_RUNTIME_DIR/workq/redis.sock")" 1
    # It did not fall back to a socket of its own in /tmp/workq-$UID.
    assert_equal "$(cat "$HOME/.local/state/workq/socket")" "$XDG_RUNTIME_DIR/workq/redis.sock"
    local sock
    sock=$(cat "$HOME/.local/state/workq/socket")
    assert_equal "$(redis-cli -s "$sock" hget "{$WORKQ_NAMESPACE:q}:job:$first" payload)" from-shell
    assert_equal "$(redis-cli -s "$sock" hget "{$WORKQ_NAMESPACE:q}:job:$second" payload)" from-cron
}

# refused_socket_dir WHY: the tool refuses the pre-created socket directory, names it and the
# reason, and starts no server.
assert_socket_dir_refused() {
    local why=$1
    run --separate-stderr workq-enqueue q x
    assert_equal "$status" 3
    assert_equal "$output" ""
    [[ "$stderr" == *"$XDG_RUNTIME_DIR/workq"* ]] || fail "the directory is not named: $stderr"
    [[ "$stderr" == *"$why"* ]] || fail "the reason '$why' is not given: $stderr"
    [ ! -e "$XDG_STATE_HOME/workq/redis.pid" ] || fail "a server was started"
    [ ! -e "$XDG_RUNTIME_DIR/workq/redis.sock" ] || fail "a socket was made in the refused directory"
}

@test "a pre-created socket directory owned by someone else is refused" {
    mkdir -m 700 "$XDG_RUNTIME_DIR/workq"
    chown nobody "$XDG_RUNTIME_DIR/workq"
    assert_socket_dir_refused "owned by"
}

@test "a pre-created socket directory open to others is refused" {
    mkdir "$XDG_RUNTIME_DIR/workq"
    chmod 777 "$XDG_RUNTIME_DIR/workq"
    assert_socket_dir_refused "open to others"
    chmod 750 "$XDG_RUNTIME_DIR/workq"
    assert_socket_dir_refused "open to others"
}

@test "a socket directory that is a symbolic link is refused, even to a private directory" {
    mkdir -m 700 "$BATS_TEST_TMPDIR/elsewhere"
    ln -s "$BATS_TEST_TMPDIR/elsewhere" "$XDG_RUNTIME_DIR/workq"
    assert_socket_dir_refused "symbolic link"
    [ ! -e "$BATS_TEST_TMPDIR/elsewhere/redis.sock" ] || fail "a socket was made through the link"
}

@test "redis-server missing or not runnable: exit 3 at once, saying how to install it or point at a server" {
    local server
    printf 'not a program' >"$BATS_TEST_TMPDIR/not-runnable"
    printf 'not a program' >"$BATS_TEST_TMPDIR/bad-format"
    chmod +x "$BATS_TEST_TMPDIR/bad-format"
    for server in "$BATS_TEST_TMPDIR/no-such-redis-server" "$BATS_TEST_TMPDIR/not-runnable" \
        "$BATS_TEST_TMPDIR/bad-format"; do
        local start=$(now_ms)
        WORKQ_REDIS_SERVER=$server run --separate-stderr timeout 20 workq-enqueue q x
        local took=$(($(now_ms) - start))
        assert_equal "$status" 3
        assert_equal "$output" ""
        [[ "$stderr" == *"apt-get install redis-server"* ]] || fail "$server: no install hint: $stderr"
        [[ "$stderr" == *"--redis"* && "$stderr" == *WORKQ_REDIS_URL* ]] ||
            fail "$server: no hint to point at a server: $stderr"
        [ "$took" -lt 5000 ] || fail "$server: took ${took} ms"
    done
}

@test "a server that exits at start is reported at once, with its log" {
    printf '#!/bin/sh\necho "FATAL: bad things" >&2\nexit 1\n' >"$BATS_TEST_TMPDIR/dies"
    chmod +x "$BATS_TEST_TMPDIR/dies"
    local start=$(now_ms)
    WORKQ_REDIS_SERVER="$BATS_TEST_TMPDIR/dies" run --separate-stderr timeout 40 workq-enqueue q x
    local took=$(($(now_ms) - start))
    assert_equal "$status" 3
    [[ "$stderr" == *"FATAL: bad things"* ]] || fail "the log is not shown: $stderr"
    [ "$took" -lt 5000 ] || fail "took ${took} ms"
}

@test "a stopped server is started again, and its jobs are still there (append-only file)" {
    run --separate-stderr workq-enqueue q kept
    assert_success
    local id=$output
    stop_embedded_server

    run --separate-stderr workq-enqueue q again
    assert_success
    [[ "$stderr" == *"started the embedded redis-server"* ]] || fail "no notice: $stderr"
    [ "$(cat "$XDG_STATE_HOME/workq/redis.pid")" != "$STOPPED_PID" ] || fail "the same pid"
    assert_equal "$(ecli hget "{$WORKQ_NAMESPACE:q}:job:$id" payload)" kept
}

@test "a server whose socket vanished is replaced, never run twice on one data directory" {
    run --separate-stderr workq-enqueue q kept
    assert_success
    local id=$output old
    old=$(cat "$XDG_STATE_HOME/workq/redis.pid")
    # A /tmp cleaner removed the socket; the server still runs.
    rm "$XDG_RUNTIME_DIR/workq/redis.sock"

    run --separate-stderr workq-enqueue q again
    assert_success
    wait_until 10 process_gone "$old"
    [ "$(cat "$XDG_STATE_HOME/workq/redis.pid")" != "$old" ] || fail "the same pid"
    assert_equal "$(redis_servers_on "$XDG_RUNTIME_DIR/workq/redis.sock")" 1
    assert_equal "$(ecli hget "{$WORKQ_NAMESPACE:q}:job:$id" payload)" kept
}

# ---- issue 23 item 4: checked on every connection, not only at start -------------------------

@test "the socket directory is checked on every connection, not only when the server starts" {
    run --separate-stderr workq-enqueue q a
    assert_success
    chmod 755 "$XDG_RUNTIME_DIR/workq"
    run --separate-stderr workq-enqueue q b
    assert_equal "$status" 3
    assert_equal "$output" ""
    [[ "$stderr" == *"refusing the socket directory $XDG_RUNTIME_DIR/workq: it is open to others"* ]] ||
        fail "not refused: $stderr"
    chmod 700 "$XDG_RUNTIME_DIR/workq"
    run --separate-stderr workq-enqueue q c
    assert_success
    assert_equal "$(ecli llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 2
}

@test "after a reboot, a socket directory replaced by a link to someone's server is refused on the fast path" {
    run --separate-stderr workq-enqueue q a
    assert_success
    stop_embedded_server
    # The runtime directory is gone (reboot, cleaner); someone made it again as a link to a
    # directory where their own server listens.
    rm -rf "$XDG_RUNTIME_DIR/workq"
    mkdir -m 700 "$BATS_TEST_TMPDIR/rogue"
    start_redis "$BATS_TEST_TMPDIR/rogue"
    OTHER_PIDS+=("$(cat "$BATS_TEST_TMPDIR/rogue/redis.pid")")
    ln -s "$BATS_TEST_TMPDIR/rogue" "$XDG_RUNTIME_DIR/workq"
    assert_refused "$BATS_TEST_TMPDIR/rogue/redis.sock" \
        "refusing the socket directory $XDG_RUNTIME_DIR/workq: it is a symbolic link"
}

@test "a server run by another user on our socket is refused (SO_PEERCRED)" {
    [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null || skip "needs root and setpriv"
    run --separate-stderr workq-enqueue q a
    assert_success
    stop_embedded_server
    # Another user's server answers on the socket path recorded in our state directory (made
    # while the directory was open; it is private again). Outside the test's directory, which
    # that user cannot reach.
    OUTSIDE_DIR=$(mktemp -d /tmp/workq-peercred.XXXXXX)
    local rogue=$OUTSIDE_DIR/rogue
    mkdir "$rogue"
    chown nobody "$rogue"
    chmod 711 "$OUTSIDE_DIR"
    mkdir -m 733 "$OUTSIDE_DIR/workq"
    export XDG_RUNTIME_DIR=$OUTSIDE_DIR
    echo "$XDG_RUNTIME_DIR/workq/redis.sock" >"$XDG_STATE_HOME/workq/socket"
    setpriv --reuid nobody --regid "$(id -g nobody)" --clear-groups redis-server --port 0 \
        --unixsocket "$XDG_RUNTIME_DIR/workq/redis.sock" --unixsocketperm 777 --save '' \
        --appendonly no --daemonize yes --pidfile "$rogue/redis.pid" --logfile "$rogue/redis.log" \
        --dir "$rogue"
    wait_until 5 test -s "$rogue/redis.pid"
    OTHER_PIDS+=("$(cat "$rogue/redis.pid")")
    wait_until 5 redis-cli -s "$XDG_RUNTIME_DIR/workq/redis.sock" ping
    chmod 700 "$XDG_RUNTIME_DIR/workq"

    assert_refused "$XDG_RUNTIME_DIR/workq/redis.sock" \
        "refusing the server on $XDG_RUNTIME_DIR/workq/redis.sock: it runs as uid $(id -u nobody), not as you"
}

@test "a stale redis.pid never makes a tool signal an unrelated process, whatever its name" {
    mkdir -p -m 700 "$XDG_STATE_HOME/workq"
    # A process of ours that calls itself redis-server and even works in the state directory.
    (cd "$XDG_STATE_HOME/workq" && exec -a redis-server sleep 300) 3>&- &
    local decoy=$!
    OTHER_PIDS+=("$decoy")
    wait_until 5 grep -qa '^redis-server' "/proc/$decoy/cmdline"
    echo "$decoy" >"$XDG_STATE_HOME/workq/redis.pid"
    run --separate-stderr workq-enqueue q x
    assert_success
    [[ "$stderr" == *"started the embedded redis-server"* ]] || fail "no server started: $stderr"
    alive_process() { ! process_gone "$1"; }
    alive_process "$decoy" || fail "the decoy was signalled"
    [ "$(cat "$XDG_STATE_HOME/workq/redis.pid")" != "$decoy" ] || fail "the pid file was not rewritten"
}

@test "two state directories sharing one socket path: the second is refused, naming both; the first server keeps its socket" {
    local a="$BATS_TEST_TMPDIR/state-a" b="$BATS_TEST_TMPDIR/state-b"
    PID_FILES+=("$a/workq/redis.pid" "$b/workq/redis.pid")
    XDG_STATE_HOME=$a run --separate-stderr workq-enqueue q from-a
    assert_success
    local first=$output
    XDG_STATE_HOME=$b run --separate-stderr workq-enqueue q from-b
    assert_equal "$status" 3
    assert_equal "$output" ""
    [[ "$stderr" == *"$XDG_RUNTIME_DIR/workq/redis.sock"* && "$stderr" == *"$a/workq"* &&
        "$stderr" == *"$b/workq"* ]] || fail "both state directories are not named: $stderr"
    [ ! -e "$b/workq/redis.pid" ] || fail "a second server was started"
    # The first server still answers on its socket, with its job.
    XDG_STATE_HOME=$a run --separate-stderr workq-enqueue q again
    assert_success
    assert_equal "$stderr" ""
    assert_equal "$(redis-cli -s "$XDG_RUNTIME_DIR/workq/redis.sock" hget "{$WORKQ_NAMESPACE:q}:job:$first" payload)" from-a

    # The fast path too: b's record of that socket (an older start) is answered by a's server.
    mkdir -p -m 700 "$b/workq"
    echo "$XDG_RUNTIME_DIR/workq/redis.sock" >"$b/workq/socket"
    XDG_STATE_HOME=$b run --separate-stderr workq-enqueue q from-b
    assert_equal "$status" 3
    [[ "$stderr" == *"$a/workq"* && "$stderr" == *"$b/workq"* ]] || fail "not refused: $stderr"
    assert_equal "$(redis-cli -s "$XDG_RUNTIME_DIR/workq/redis.sock" llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 2
}

@test "a worker's reconnects check the socket directory too" {
    run --separate-stderr workq-enqueue q warm-up
    assert_success
    workq-work --name w q -- true 2>"$BATS_TEST_TMPDIR/w.log" 3>&- &
    local w=$!
    OTHER_PIDS+=("$w")
    wait_until 10 grep -q "state starting -> running" "$BATS_TEST_TMPDIR/w.log"
    chmod 755 "$XDG_RUNTIME_DIR/workq"
    ecli client kill type normal >/dev/null
    wait_until 10 grep -q "refusing the socket directory $XDG_RUNTIME_DIR/workq: it is open to others" \
        "$BATS_TEST_TMPDIR/w.log"
    chmod 700 "$XDG_RUNTIME_DIR/workq"
    wait_until 30 grep -q "reconnected to Redis" "$BATS_TEST_TMPDIR/w.log"
    local id
    id=$(workq-enqueue q after)
    wait_until 10 test "$(ecli hget "{$WORKQ_NAMESPACE:q}:job:$id" state)" = succeeded
    kill -TERM "$w"
    wait_until 30 process_gone "$w"
}
