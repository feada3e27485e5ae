#!/usr/bin/env bats
# Security (issue #10): the Redis password never shows in a process's argv, a handler's
# environment or any log line, however it is given; a wrong password fails fast, one AUTH per
# run, in every tool; a least-privilege ACL user limited to the namespace's keys, without KEYS,
# CONFIG, FLUSH*, DEBUG or any other @dangerous command, can run every tool. What
# connection.bats and work.bats already cover (the password in enqueue's messages, a wrong
# password for workq-enqueue, WORKQ_REDIS_PASSWORD hidden from handlers) is not repeated.

load ops_helpers

PW=Sekr1tPw4Redis

setup() {
    ops_setup
    start_redis_tcp "$OWN" --requirepass "$PW"
    export WORKQ_TEST_REDIS_SOCKET="$OWN/redis.sock"
    unset WORKQ_REDIS_URL
    export D
    printf '%s\n' "$PW" >"$D/pw"
    chmod 600 "$D/pw"
}
teardown() { ops_teardown; }

# The test's own redis-cli logs in through the environment of that one command only: the
# password must not be in the environment the tools (and so their handlers) inherit.
rcli() { REDISCLI_AUTH=$PW redis-cli -s "$OWN/redis.sock" "$@"; }
info_field() { REDISCLI_AUTH=$PW redis_info_field "$OWN/redis.sock" "$1"; }
job_count_is() { [ "$(job_count "$1")" -eq "$2" ]; }

# A handler that records its pid, then waits until the test has looked at it ($D/go).
waiting_handler() {
    make_handler waits <<'EOF'
echo $$ >"$D/handler.pid"
while [ ! -e "$D/go" ]; do sleep 0.05; done
EOF
}

# check_worker_hides_password NAME [ENV=VALUE...] -- [WORKQ-WORK ARGS...]: runs a worker with
# the environment and arguments given until its handler runs one job, then checks the worker's
# /proc/PID/cmdline, the handler's /proc/PID/environ and every line the worker logged.
check_worker_hides_password() {
    local name=$1
    shift
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    rm -f "$D/go" "$D/handler.pid"
    workq-enqueue --password-file "$D/pw" --redis "redis://127.0.0.1:$REDIS_TCP_PORT" q job >/dev/null
    env "${envs[@]}" workq-work --max-jobs 1 --log-level debug "$@" q -- "$(waiting_handler)" \
        >"$D/$name.out" 2>"$D/$name.log" 3>&- &
    local pid=$!
    WORKER_PIDS+=("$pid")
    wait_until 20 test -s "$D/handler.pid" || fail "$name: no job ran: $(cat "$D/$name.log")"
    local handler
    handler=$(cat "$D/handler.pid")
    tr '\0' ' ' <"/proc/$pid/cmdline" >"$D/$name.cmdline"
    tr '\0' '\n' <"/proc/$handler/environ" >"$D/$name.environ"
    touch "$D/go"
    wait_exit "$pid" 20
    assert_equal "$EXIT_CODE" 0
    ! grep -q "$PW" "$D/$name.cmdline" || fail "$name: the password is in the worker's argv: $(cat "$D/$name.cmdline")"
    ! grep -q "$PW" "$D/$name.environ" || fail "$name: the password is in the handler's environment: $(grep "$PW" "$D/$name.environ")"
    ! grep -q "$PW" "$D/$name.log" || fail "$name: the password is in the log: $(grep "$PW" "$D/$name.log")"
    ! grep -q "$PW" "$D/$name.out" || fail "$name: the password is on stdout"
    grep -q 'WORKQ_JOB_ID=' "$D/$name.environ" || fail "$name: not the handler's environment"
}

@test "the password is never in a worker's argv, its handler's environment or its log, however given" {
    local url="redis://127.0.0.1:$REDIS_TCP_PORT"
    local with_pw="redis://default:$PW@127.0.0.1:$REDIS_TCP_PORT"
    check_worker_hides_password env-password WORKQ_REDIS_PASSWORD="$PW" -- --redis "$url"
    check_worker_hides_password password-file -- --redis "$url" --password-file "$D/pw"
    printf '[redis]\nurl = "%s"\npassword_file = "%s"\n' "$url" "$D/pw" >"$D/c.toml"
    check_worker_hides_password config WORKQ_CONFIG="$D/c.toml" --
    check_worker_hides_password workq-url WORKQ_REDIS_URL="$with_pw" --
    check_worker_hides_password redis-url REDIS_URL="$with_pw" --
    check_worker_hides_password json-log WORKQ_REDIS_URL="$with_pw" -- --log-format json
    # On the command line: accepted with a warning, and blanked from argv once parsed, so the
    # process list does not show it while the worker runs (both spellings of the flag).
    check_worker_hides_password argv -- --redis "$with_pw"
    grep -q 'password' "$D/argv.log" || fail "no warning about a password in --redis"
    # Shown as "***" whatever its length (issue 23): no run of stars, and no NULs (shown as
    # spaces here) left where the password was.
    grep -q -- "--redis redis://default:\*\*\*@127" "$D/argv.cmdline" || fail "argv: $(cat "$D/argv.cmdline")"
    [[ "$(cat "$D/argv.cmdline")" != *"  "* ]] || fail "argv keeps the password's length: $(od -c "$D/argv.cmdline")"
    check_worker_hides_password argv-equals -- "--redis=$with_pw"
    grep -q -- "--redis=redis://default:\*\*\*@127" "$D/argv-equals.cmdline" || fail "argv: $(cat "$D/argv-equals.cmdline")"
    # The JSON log is still JSON.
    while IFS= read -r line; do jq -e . <<<"$line" >/dev/null || fail "not JSON: $line"; done <"$D/json-log.log"
    # A REDIS_URL without a password is no secret: handlers keep it.
    check_worker_hides_password plain-redis-url REDIS_URL="$url" WORKQ_REDIS_PASSWORD="$PW" --
    grep -qx "REDIS_URL=$url" "$D/plain-redis-url.environ" || fail "REDIS_URL without a password was taken away"
}

@test "the password is blanked from every tool's argv and never in its output, even at debug level" {
    local with_pw="redis://:$PW@127.0.0.1:$REDIS_TCP_PORT"
    local id
    id=$(workq-enqueue --redis "$with_pw" q x 2>/dev/null)
    # A tool that lingers (--wait) shows its argv blanked in the process list.
    workq-enqueue --redis "$with_pw" --wait q y >"$D/wait.out" 2>"$D/wait.log" 3>&- &
    local pid=$!
    wait_until 10 job_count_is q 2
    tr '\0' ' ' <"/proc/$pid/cmdline" >"$D/wait.cmdline"
    ! grep -q "$PW" "$D/wait.cmdline" || fail "the password is in workq-enqueue's argv: $(cat "$D/wait.cmdline")"
    grep -q 'redis://:\*\*\*@' "$D/wait.cmdline" || fail "argv: $(cat "$D/wait.cmdline")"
    kill "$pid"
    wait "$pid" || true
    # Payloads after -- are the user's data: never touched, even when they look like a URL.
    local lookalike="redis://:Other-Pw7@h"
    run workq-enqueue --redis "redis://127.0.0.1:$REDIS_TCP_PORT" --password-file "$D/pw" q -- "$lookalike"
    assert_success
    assert_equal "$(job_field q "$output" payload)" "$lookalike"
    local cmd words format
    for cmd in "workq-status" "workq-status --json" "workq-status --prometheus" "workq-status --check" \
        "workq-status job $id" "workq-queue ls q" "workq-queue ls --json q" "workq-dlq ls q" \
        "workq-dlq count q" "workq-queue pause q" "workq-queue resume q"; do
        for format in human json; do
            # The shared options go before a subcommand: `workq-queue --redis URL ls q`.
            read -ra words <<<"$cmd"
            run --separate-stderr "${words[0]}" --log-level debug --log-format $format \
                --redis "$with_pw" "${words[@]:1}"
            [ "$status" -le 1 ] || fail "$cmd: exit $status: $stderr"
            [[ "$output$stderr" != *"$PW"* ]] || fail "$cmd ($format): the password is shown: $stderr"
        done
    done
}

@test "a wrong password fails fast in every tool: exit 3 (--check: UNKNOWN), one AUTH, no retry loop" {
    local url="redis://127.0.0.1:$REDIS_TCP_PORT"
    export WORKQ_REDIS_URL=$url WORKQ_REDIS_PASSWORD=wrong-Pw123
    local cmd start took connections failed_auth
    for cmd in "workq-work q -- true" "workq-work --burst q -- true" "workq-queue ls q" \
        "workq-queue pause q" "workq-dlq ls q" "workq-dlq count q" "workq-status" \
        "workq-status --json" "workq-status job abc" "workq-status --check" "workq-enqueue --wait q x"; do
        rcli config resetstat >/dev/null
        start=$(now_ms)
        run --separate-stderr timeout 20 $cmd
        took=$(($(now_ms) - start))
        assert_equal "$status" 3
        [ "$took" -lt 5000 ] || fail "$cmd: took ${took} ms"
        [[ "$output$stderr" != *wrong-Pw123* ]] || fail "$cmd: the password is shown"
        [[ "$stderr$output" == *WRONGPASS* || "$stderr$output" == *password* ]] || fail "$cmd: no reason: $stderr"
        connections=$(info_field total_connections_received)
        failed_auth=$(info_field cmdstat_auth | sed -n 's/.*failed_calls=\([0-9]*\).*/\1/p')
        # The tool's one connection, and this INFO's.
        [ "$connections" -le 3 ] || fail "$cmd: $connections connections: a reconnect storm"
        assert_equal "${failed_auth:-0}" 1
    done
    [[ "$(workq-status --check 2>/dev/null)" == *UNKNOWN* ]] || fail "--check does not say UNKNOWN"
}

@test "a least-privilege ACL user (the namespace's keys only, no @dangerous command) can run every tool" {
    local ns=$WORKQ_NAMESPACE
    rcli acl setuser app on '>app-Pw1' resetkeys "~{$ns:*" "~{$ns}:*" \
        resetchannels +@all -@dangerous >/dev/null
    # What the user may not do.
    local app=(redis-cli -p "$REDIS_TCP_PORT" --user app --pass app-Pw1 --no-auth-warning)
    local denied
    while IFS= read -r denied; do
        read -ra denied <<<"$denied"
        run "${app[@]}" "${denied[@]}"
        [[ "$output" == *NOPERM* || "$output" == *"not allowed"* ]] ||
            fail "the ACL allows '${denied[*]}': $output"
    done <<'EOF'
keys x*
config get maxmemory
flushall
flushdb
debug sleep 0
get other
set {other:q}:x 1
EOF
    export WORKQ_REDIS_URL="redis://app@127.0.0.1:$REDIS_TCP_PORT"
    export WORKQ_REDIS_PASSWORD=app-Pw1

    local ok bad later persistent
    ok=$(workq-enqueue q good)
    bad=$(workq-enqueue --max-attempts 1 q bad)
    later=$(workq-enqueue --delay 1h q later)
    workq-enqueue --unique k1 --id my-id q uniq >/dev/null
    # Nothing runs it yet: --wait-timeout passes (124), which needs the same commands.
    run --separate-stderr workq-enqueue --wait --wait-timeout 200ms q waited
    assert_equal "$status" 124
    refute_regex "$stderr" NOPERM
    start_worker w --burst -c 2 q -- sh -c 'read -r p; [ "$p" != bad ]'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 1
    ! grep -q NOPERM "$D/w.log" || fail "$(grep NOPERM "$D/w.log")"
    assert_raw_state q "$ok" succeeded
    assert_raw_state q "$bad" dead
    # A long-running worker (registry, heartbeat, blocking wait) and a persistent one.
    start_worker long q -- cat
    wait_until 10 worker_listed_live "$LAST_PID"
    persistent=$(workq-enqueue p '{"x":1}')
    start_worker pers --persistent --burst p -- sh -c 'while read -r line; do id=$(echo "$line" | jq -r .id); echo "{\"id\":\"$id\",\"ok\":true}"; done'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_raw_state p "$persistent" succeeded

    local cmd
    for cmd in "workq-status" "workq-status --json" "workq-status --prometheus" "workq-status q p" \
        "workq-status job $ok $bad" "workq-queue ls q" "workq-queue ls --json q" "workq-queue pause q" \
        "workq-queue resume q" "workq-queue cancel $later" "workq-queue purge q" "workq-dlq ls q" \
        "workq-dlq ls --json q" "workq-dlq show $bad" "workq-dlq count q" "workq-dlq export q" \
        "workq-dlq cap q --max-count 100" "workq-dlq requeue q $bad" "workq-dlq rm q --all"; do
        run --separate-stderr $cmd
        assert_success
        [[ "$stderr$output" != *NOPERM* ]] || fail "$cmd: $stderr"
    done
    # An export brought back into another queue of the namespace.
    printf '{"id":"imported-1","payload":"again"}\n' >"$D/export.jsonl"
    run --separate-stderr workq-dlq import replay <"$D/export.jsonl"
    assert_success
    [[ "$stderr$output" != *NOPERM* ]] || fail "import: $stderr"
    assert_raw_state replay imported-1 waiting
    run --separate-stderr workq-status --check q
    [ "$status" -le 1 ] || fail "--check: $output"
    [[ "$output" != *NOPERM* ]] || fail "--check: $output"
    kill -TERM "$(cat "$D/long.wpid")"
    wait_exit "$(cat "$D/long.wpid")" 20
    assert_equal "$EXIT_CODE" 0
    ! grep -q NOPERM "$D/long.log" || fail "$(grep NOPERM "$D/long.log")"
}

@test "a user who may not run FUNCTION (Redis >= 7) runs every script through EVALSHA: enqueue, work, status" {
    rcli function list >/dev/null 2>&1 || skip "no functions on this server"
    rcli acl setuser nofn on '>nofn-Pw1' '~*' '&*' +@all -function >/dev/null
    rcli function flush >/dev/null
    export WORKQ_REDIS_URL="redis://nofn@127.0.0.1:$REDIS_TCP_PORT"
    export WORKQ_REDIS_PASSWORD=nofn-Pw1
    local evalsha_before ok
    evalsha_before=$(rcli info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p')
    ok=$(workq-enqueue q good)
    start_worker w --burst q -- cat
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    ! grep -q NOPERM "$D/w.log" || fail "$(grep NOPERM "$D/w.log")"
    assert_raw_state q "$ok" succeeded
    run --separate-stderr workq-status q
    assert_success
    [[ "$stderr$output" != *NOPERM* ]] || fail "status: $stderr"
    # FUNCTION LOAD was refused: nothing loaded, the scripts went as EVALSHA.
    assert_equal "$(rcli function list)" ""
    local evalsha_after
    evalsha_after=$(rcli info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p')
    [ "${evalsha_after:-0}" -gt "${evalsha_before:-0}" ] || fail "no EVALSHA: $(rcli info commandstats)"
}

@test "a password that goes wrong while a worker runs: one AUTH per reconnect attempt, at growing intervals" {
    export WORKQ_REDIS_URL="redis://127.0.0.1:$REDIS_TCP_PORT" WORKQ_REDIS_PASSWORD=$PW
    start_worker w q -- true
    wait_until 10 worker_listed_live "$LAST_PID"
    rcli config set requirepass changed-Pw9 >/dev/null
    REDISCLI_AUTH=changed-Pw9 redis-cli -s "$OWN/redis.sock" config resetstat >/dev/null
    REDISCLI_AUTH=changed-Pw9 redis-cli -s "$OWN/redis.sock" client kill type normal >/dev/null
    wait_until 20 grep -q 'attempt 5)' "$D/w.log" || fail "no reconnect attempts: $(tail -5 "$D/w.log")"
    local failed_auth
    failed_auth=$(REDISCLI_AUTH=changed-Pw9 redis_info_field "$OWN/redis.sock" cmdstat_auth |
        sed -n 's/.*failed_calls=\([0-9]*\).*/\1/p')
    # "attempt 5" is announced when the 4th has failed: attempts 1..4 (and perhaps the 5th
    # meanwhile), one AUTH each, no burst of connections.
    [ "$failed_auth" -ge 4 ] && [ "$failed_auth" -le 5 ] || fail "$failed_auth failed AUTHs for 5 attempts"
    # The announced delays grow: "reconnecting in 1s234ms (attempt N)", in milliseconds.
    local delays
    delays=$(sed -n 's/.*reconnecting in \([0-9hms]*\) (attempt [0-9]*).*/\1/p' "$D/w.log" | head -5 |
        awk '{ ms = 0; s = $0
               while (match(s, /^[0-9]+(ms|h|m|s)/)) {
                   t = substr(s, 1, RLENGTH); s = substr(s, RLENGTH + 1); n = t + 0
                   if (t ~ /ms$/) ms += n; else if (t ~ /h$/) ms += n * 3600000
                   else if (t ~ /m$/) ms += n * 60000; else ms += n * 1000 }
               print ms }')
    assert_equal "$(wc -l <<<"$delays")" 5
    sort -n -c <<<"$delays" || fail "the delays do not grow: $delays"
    grep -q WRONGPASS "$D/w.log" || fail "the reason is not said"
    ! grep -q "$PW\|changed-Pw9" "$D/w.log" || fail "a password is in the log"
    kill -TERM "$LAST_PID"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
}

# ---- issue 23: what a handler or another user could read ----

@test "a handler cannot read the worker's environment, descriptors or memory (the worker is not dumpable)" {
    # The handler tries what an attacker among the handlers would. Root reads every process's
    # /proc files, dumpable or not: as root, the worker and its handler run as nobody.
    local as=() dir
    dir=$(mktemp -d /tmp/workq-dumpable.XXXXXX)
    chmod 777 "$dir"
    if [ "$(id -u)" = 0 ]; then as=(setpriv --reuid=nobody --regid=nogroup --clear-groups); fi
    cat >"$dir/peek" <<'EOF'
#!/bin/sh
cat "/proc/$PPID/environ" >"$DIR/environ" 2>/dev/null
echo "environ:$?" >"$DIR/result"
ls "/proc/$PPID/fd" >/dev/null 2>&1; echo "fd:$?" >>"$DIR/result"
head -c 1 "/proc/$PPID/mem" >/dev/null 2>&1; echo "mem:$?" >>"$DIR/result"
EOF
    chmod 755 "$dir/peek"
    export WORKQ_REDIS_URL="redis://127.0.0.1:$REDIS_TCP_PORT"
    WORKQ_REDIS_PASSWORD=$PW workq-enqueue q job >/dev/null
    run --separate-stderr env DIR="$dir" HOME="$dir" XDG_STATE_HOME="$dir/state" \
        WORKQ_REDIS_PASSWORD="$PW" "${as[@]}" "$(command -v workq-work)" --burst q -- "$dir/peek"
    local result
    result=$(cat "$dir/result" 2>/dev/null)
    ! grep -qa "$PW" "$dir/environ" 2>/dev/null || { rm -rf "$dir"; fail "the handler read the password in /proc/\$PPID/environ"; }
    rm -rf "$dir"
    assert_equal "$status" 0
    grep -qx 'environ:[1-9][0-9]*' <<<"$result" || fail "the handler read the worker's environ: $result"
    grep -qx 'fd:[1-9][0-9]*' <<<"$result" || fail "the handler listed the worker's fds: $result"
    grep -qx 'mem:[1-9][0-9]*' <<<"$result" || fail "the handler read the worker's memory: $result"
}

@test "a worker's state directories are 0700 whatever the umask; a handler's file is closed to others" {
    export WORKQ_REDIS_URL="redis://127.0.0.1:$REDIS_TCP_PORT" WORKQ_REDIS_PASSWORD=$PW
    workq-enqueue q job >/dev/null
    # A level made before by hand, open to others, is closed too.
    mkdir -p "$XDG_STATE_HOME/workq"
    chmod 755 "$XDG_STATE_HOME/workq"
    (umask 000 && workq-work --burst --name w q -- sh -c 'echo secret >"$WORKQ_STATE_DIR/file"' \
        >"$D/w.out" 2>"$D/w.log" 3>&-) || fail "$(cat "$D/w.log")"
    local dir
    for dir in "$XDG_STATE_HOME/workq" "$XDG_STATE_HOME/workq/workers" \
        "$XDG_STATE_HOME/workq/workers/w" "$XDG_STATE_HOME/workq/workers/w/slot-1"; do
        assert_equal "$(stat -c %a "$dir")" 700
    done
    assert_equal "$(cat "$XDG_STATE_HOME/workq/workers/w/slot-1/file")" secret
}

@test "--password-file and --config that never end (/dev/zero) are exit 2 naming the file, not a tool eating memory" {
    export WORKQ_REDIS_URL="redis://127.0.0.1:$REDIS_TCP_PORT"
    local tool rest
    for tool in workq-enqueue workq-status workq-work; do
        case $tool in
            workq-enqueue) rest=(q x) ;;
            workq-status) rest=() ;;
            workq-work) rest=(q -- true) ;;
        esac
        run --separate-stderr timeout 20 $tool --password-file /dev/zero "${rest[@]}"
        assert_equal "$status" 2
        [[ "$stderr" == *"password file /dev/zero"*"over"* ]] || fail "$tool: $stderr"
        run --separate-stderr timeout 20 $tool --config /dev/zero "${rest[@]}"
        assert_equal "$status" 2
        [[ "$stderr" == *"config file /dev/zero"*"over"* ]] || fail "$tool: $stderr"
    done
    # A password file of an ordinary size still works.
    run --separate-stderr workq-enqueue --password-file "$D/pw" q x
    assert_success
}

@test "--name '' is a usage error, as is an empty name in the config file" {
    run --separate-stderr workq-work --name '' q -- true
    assert_equal "$status" 2
    [[ "$stderr" == *--name* ]] || fail "$stderr"
    printf '[work]\nname = ""\n' >"$D/c.toml"
    run --separate-stderr workq-work --config "$D/c.toml" q -- true
    assert_equal "$status" 2
    [[ "$stderr" == *name* ]] || fail "$stderr"
}
