#!/usr/bin/env bats
# Connecting to Redis (CONTRACT.md §2, issue 2): URL forms and the bad ones, unreachable and
# frozen servers, passwords and where they come from, the database number, and which of the
# flag, WORKQ_REDIS_URL, the config file and REDIS_URL names the server.

load helpers

setup() {
    workq_test_setup
    OWN="$BATS_TEST_TMPDIR/own"
    mkdir -p "$OWN"
}

teardown() {
    # A server a test froze must be thawed to hear the TERM.
    if [ -f "$OWN/redis.pid" ]; then kill -CONT "$(cat "$OWN/redis.pid")" 2>/dev/null || true; fi
    stop_redis "$OWN"
    workq_test_teardown
}

# Every diagnostic line starts with the program's name; stdout stays empty on failure.
assert_failed_cleanly() {
    local code=$1
    assert_equal "$status" "$code"
    assert_equal "$output" ""
    [ -n "$stderr" ] || fail "nothing on stderr"
    while IFS= read -r line; do
        [[ "$line" == workq-enqueue:* ]] || fail "stderr line without the program's name: $line"
    done <<<"$stderr"
}

@test "a malformed URL is a usage error (exit 2) naming the URL" {
    for url in 'localhost:6379' 'redis://' 'redis://:6379' 'redis://h:notaport' 'redis://h:70000' \
        'redis://[::1' 'unix://relative.sock' 'redis://h/%zz'; do
        run --separate-stderr workq-enqueue --redis "$url" q x
        assert_failed_cleanly 2
        [[ "$stderr" == *"invalid Redis URL"* ]] || fail "$url: $stderr"
        [[ "$stderr" == *"${url%%%*}"* ]] || fail "$url is not named: $stderr"
    done
    assert_equal "$(job_count q)" 0
}

@test "an unknown URL scheme is a usage error naming the scheme" {
    run --separate-stderr workq-enqueue --redis 'http://localhost:6379' q x
    assert_failed_cleanly 2
    [[ "$stderr" == *"'http'"* ]] || fail "the scheme is not named: $stderr"
    [[ "$stderr" == *"redis://"* && "$stderr" == *"unix://"* ]] ||
        fail "the message does not say which schemes work: $stderr"
}

@test "rediss:// to a port where nobody listens exits 3 naming the server, never the password" {
    # TLS itself is tested in tls.bats; here only that the URL form is taken.
    WORKQ_REDIS_URL='rediss://:hunter2@127.0.0.1:1' run --separate-stderr workq-enqueue q x
    assert_failed_cleanly 3
    [[ "$stderr" == *"rediss://127.0.0.1:1"* ]] || fail "$stderr"
    [[ "$stderr" != *hunter2* ]] || fail "the password is shown: $stderr"
}

@test "a malformed redis+sentinel:// URL is a usage error (exit 2) saying what is wrong" {
    local url says
    while IFS='|' read -r url says; do
        run --separate-stderr workq-enqueue --redis "$url" q x
        assert_failed_cleanly 2
        [[ "$stderr" == *"invalid Redis URL"* && "$stderr" == *"$says"* ]] || fail "$url: $stderr"
    done <<'EOF'
redis+sentinel://127.0.0.1:26379|the master's name is missing
redis+sentinel://127.0.0.1:26379/|the master's name is missing
redis+sentinel:///mymaster|no sentinel is named
redis+sentinel://a,,b/mymaster|an empty entry in the list of sentinels
redis+sentinel://a:99999/mymaster|port '99999'
redis+sentinel://a/mymaster/notadb|database 'notadb'
redis+sentinel://a/mymaster/0/extra|expected /MASTER[/db]
rediss+sentinel://a:0/mymaster|port '0'
EOF
    # The password stays out of the message.
    WORKQ_REDIS_URL='redis+sentinel://:hunter2@a:0/m' run --separate-stderr workq-enqueue q x
    assert_failed_cleanly 2
    [[ "$stderr" != *hunter2* ]] || fail "the password is shown: $stderr"
    assert_equal "$(job_count q)" 0
}

@test "a malformed cluster URL (several hosts) is a usage error (exit 2) saying what is wrong" {
    local url says
    while IFS='|' read -r url says; do
        run --separate-stderr workq-enqueue --redis "$url" q x
        assert_failed_cleanly 2
        [[ "$stderr" == *"invalid Redis URL"* && "$stderr" == *"$says"* ]] || fail "$url: $stderr"
    done <<'EOF'
redis://a,,b|an empty entry in the list of cluster nodes
redis://127.0.0.1:7000,|an empty entry in the list of cluster nodes
redis://127.0.0.1:7000,127.0.0.1:99999|port '99999'
redis://127.0.0.1:7000,127.0.0.1:7001/2|a Redis Cluster has only database 0
rediss://a:1,b:x|port 'x'
EOF
    WORKQ_REDIS_URL='redis://:hunter2@a:1,b:2/5' run --separate-stderr workq-enqueue q x
    assert_failed_cleanly 2
    [[ "$stderr" != *hunter2* ]] || fail "the password is shown: $stderr"
    assert_equal "$(job_count q)" 0
}

@test "cluster seeds none of which listens: exit 3 within 10 s, naming each" {
    local start=$SECONDS
    run --separate-stderr workq-enqueue --redis 'redis://127.0.0.1:1,127.0.0.1:2' q x
    assert_failed_cleanly 3
    [ $((SECONDS - start)) -le 10 ] || fail "took $((SECONDS - start)) s"
    [[ "$stderr" == *"127.0.0.1:1"* && "$stderr" == *"127.0.0.1:2"* ]] || fail "$stderr"
}

@test "redis+sentinel:// with no sentinel listening exits 3 within 10 s, naming each one" {
    local start=$SECONDS
    run --separate-stderr workq-enqueue --redis 'redis+sentinel://127.0.0.1:1,127.0.0.1:2/m' q x
    assert_failed_cleanly 3
    [ $((SECONDS - start)) -le 10 ] || fail "took $((SECONDS - start)) s"
    [[ "$stderr" == *"sentinel 127.0.0.1:1:"* && "$stderr" == *"sentinel 127.0.0.1:2:"* ]] ||
        fail "$stderr"
}

@test "an unreachable TCP port exits 3 within 10 s, naming the server" {
    local start=$(now_ms)
    run --separate-stderr timeout 15 workq-enqueue --redis redis://127.0.0.1:1 q x
    local took=$(($(now_ms) - start))
    assert_failed_cleanly 3
    [[ "$stderr" == *"127.0.0.1:1"* ]] || fail "the server is not named: $stderr"
    [ "$took" -lt 10000 ] || fail "took ${took} ms"
}

@test "an unreachable socket path exits 3 at once, naming the path" {
    local start=$(now_ms)
    run --separate-stderr workq-enqueue --redis "unix://$BATS_TEST_TMPDIR/nobody-here.sock" q x
    local took=$(($(now_ms) - start))
    assert_failed_cleanly 3
    [[ "$stderr" == *"$BATS_TEST_TMPDIR/nobody-here.sock"* ]] || fail "$stderr"
    [ "$took" -lt 10000 ] || fail "took ${took} ms"
}

@test "a server that accepts but never answers exits 3 within 10 s" {
    start_redis "$OWN"
    kill -STOP "$(cat "$OWN/redis.pid")"
    local start=$(now_ms)
    run --separate-stderr timeout 15 workq-enqueue --redis "unix://$OWN/redis.sock" q x
    local took=$(($(now_ms) - start))
    assert_failed_cleanly 3
    [[ "$stderr" == *"timed out"* ]] || fail "$stderr"
    [ "$took" -lt 10000 ] || fail "took ${took} ms"
}

@test "a wrong password exits 3 fast, after one attempt, without showing the password" {
    start_redis "$OWN" --requirepass right-pw
    local auth=(-a right-pw)
    redis-cli -s "$OWN/redis.sock" --no-auth-warning "${auth[@]}" config resetstat >/dev/null
    local start=$(now_ms)
    WORKQ_REDIS_PASSWORD=wrong-pw run --separate-stderr \
        workq-enqueue --redis "unix://$OWN/redis.sock" q x
    local took=$(($(now_ms) - start))
    assert_failed_cleanly 3
    [[ "$stderr" == *"$OWN/redis.sock"* ]] || fail "the server is not named: $stderr"
    [[ "$stderr" == *WRONGPASS* || "$stderr" == *password* ]] || fail "no reason given: $stderr"
    [[ "$stderr" != *wrong-pw* ]] || fail "the password is shown: $stderr"
    [ "$took" -lt 3000 ] || fail "took ${took} ms: it should not retry"
    # One connection (the tool's) and one failed AUTH, plus this INFO's own connection.
    local connections failed_auth
    connections=$(redis_info_field "$OWN/redis.sock" total_connections_received "${auth[@]}")
    failed_auth=$(redis_info_field "$OWN/redis.sock" cmdstat_auth "${auth[@]}" |
        sed -n 's/.*failed_calls=\([0-9]*\).*/\1/p')
    [ "$connections" -le 2 ] || fail "$connections connections: a reconnect storm"
    assert_equal "$failed_auth" 1

    # No password at all against a server that needs one: exit 3 too, and it says why.
    run --separate-stderr workq-enqueue --redis "unix://$OWN/redis.sock" q x
    assert_failed_cleanly 3
    [[ "$stderr" == *NOAUTH* || "$stderr" == *uthentication* ]] || fail "$stderr"
    assert_equal "$(redis-cli -s "$OWN/redis.sock" --no-auth-warning "${auth[@]}" dbsize)" 0
}

@test "the password comes from --password-file, WORKQ_REDIS_PASSWORD or the URL" {
    start_redis_tcp "$OWN" --requirepass 'pw of 3 words'
    local url="redis://127.0.0.1:$REDIS_TCP_PORT"
    printf 'pw of 3 words\n' >"$BATS_TEST_TMPDIR/pw"
    chmod 600 "$BATS_TEST_TMPDIR/pw"

    run --separate-stderr workq-enqueue --redis "$url" --password-file "$BATS_TEST_TMPDIR/pw" q a
    assert_success
    local by_file=$output

    WORKQ_REDIS_PASSWORD='pw of 3 words' run --separate-stderr workq-enqueue --redis "$url" q b
    assert_success
    local by_env=$output

    # In the URL, percent-encoded; the user name "default" is Redis's own.
    WORKQ_REDIS_URL="redis://default:pw%20of%203%20words@127.0.0.1:$REDIS_TCP_PORT/0" \
        run --separate-stderr workq-enqueue q c
    assert_success
    local by_url=$output
    assert_equal "$stderr" ""

    # And from the config file's [redis] password_file.
    printf '[redis]\nurl = "%s"\npassword_file = "%s"\n' "$url" "$BATS_TEST_TMPDIR/pw" \
        >"$BATS_TEST_TMPDIR/c.toml"
    unset WORKQ_REDIS_URL
    WORKQ_CONFIG="$BATS_TEST_TMPDIR/c.toml" run --separate-stderr workq-enqueue q d
    assert_success
    local by_config=$output

    local id
    for id in "$by_file" "$by_env" "$by_url" "$by_config"; do
        [ -n "$id" ] || fail "no id"
        assert_equal "$(redis-cli -p "$REDIS_TCP_PORT" --no-auth-warning -a 'pw of 3 words' \
            exists "{$WORKQ_NAMESPACE:q}:job:$id")" 1
    done
}

@test "password precedence: --password-file, then WORKQ_REDIS_PASSWORD, then the URL" {
    start_redis_tcp "$OWN" --requirepass right
    local right_url="redis://:right@127.0.0.1:$REDIS_TCP_PORT"
    local wrong_url="redis://:wrong@127.0.0.1:$REDIS_TCP_PORT"
    echo right >"$BATS_TEST_TMPDIR/right"
    echo wrong >"$BATS_TEST_TMPDIR/wrong"

    # The environment beats the URL.
    WORKQ_REDIS_URL=$wrong_url WORKQ_REDIS_PASSWORD=right run --separate-stderr workq-enqueue q a
    assert_success
    WORKQ_REDIS_URL=$right_url WORKQ_REDIS_PASSWORD=wrong run --separate-stderr workq-enqueue q a
    assert_equal "$status" 3

    # The file beats the environment (and the URL).
    WORKQ_REDIS_URL=$wrong_url WORKQ_REDIS_PASSWORD=wrong run --separate-stderr \
        workq-enqueue --password-file "$BATS_TEST_TMPDIR/right" q a
    assert_success
    WORKQ_REDIS_URL=$right_url WORKQ_REDIS_PASSWORD=right run --separate-stderr \
        workq-enqueue --password-file "$BATS_TEST_TMPDIR/wrong" q a
    assert_equal "$status" 3

    # The config file's password_file ranks with the file layer: under the environment,
    # over the URL.
    printf '[redis]\npassword_file = "%s"\n' "$BATS_TEST_TMPDIR/wrong" >"$BATS_TEST_TMPDIR/w.toml"
    printf '[redis]\npassword_file = "%s"\n' "$BATS_TEST_TMPDIR/right" >"$BATS_TEST_TMPDIR/r.toml"
    WORKQ_REDIS_URL=$right_url WORKQ_REDIS_PASSWORD=right run --separate-stderr \
        workq-enqueue --config "$BATS_TEST_TMPDIR/w.toml" q a
    assert_success
    WORKQ_REDIS_URL=$wrong_url run --separate-stderr \
        workq-enqueue --config "$BATS_TEST_TMPDIR/r.toml" q a
    assert_success

    # A password file that cannot be read is a usage error naming it.
    run --separate-stderr workq-enqueue --password-file "$BATS_TEST_TMPDIR/missing" q a
    assert_equal "$status" 2
    [[ "$stderr" == *"$BATS_TEST_TMPDIR/missing"* ]] || fail "$stderr"
    : >"$BATS_TEST_TMPDIR/empty"
    run --separate-stderr workq-enqueue --password-file "$BATS_TEST_TMPDIR/empty" q a
    assert_equal "$status" 2
    [[ "$stderr" == *empty* ]] || fail "$stderr"
}

@test "a password in --redis works, with a warning, and never appears in any output" {
    start_redis_tcp "$OWN" --requirepass 'Sekr1t-Pw'
    run --separate-stderr workq-enqueue --redis "redis://:Sekr1t-Pw@127.0.0.1:$REDIS_TCP_PORT" q x
    assert_success
    assert_output --regexp '^[A-Za-z0-9][A-Za-z0-9._-]*$'
    [[ "$stderr" == *warning* && "$stderr" == *password* ]] || fail "no warning: $stderr"
    [[ "$stderr" == *--password-file* || "$stderr" == *WORKQ_REDIS_PASSWORD* ]] ||
        fail "the warning does not say what to use instead: $stderr"
    [[ "$stderr$output" != *Sekr1t* ]] || fail "the password is shown: $stderr"

    # Nor on the way to a failure, nor in debug logs.
    local url
    for url in "redis://:Sekr1t-Pw@127.0.0.1:1" "redis://user:Sekr1t-Pw@127.0.0.1:99999" \
        "redis://user:Sekr1t-Pw@127.0.0.1:1/notadb" "redis://:Sekr1t-Pw@127.0.0.1:$REDIS_TCP_PORT/99"; do
        run --separate-stderr workq-enqueue --log-level debug --redis "$url" q x
        assert [ "$status" -eq 2 -o "$status" -eq 3 ]
        [[ "$stderr$output" != *Sekr1t* ]] || fail "$url: the password is shown: $stderr"
    done
    run --separate-stderr workq-enqueue --log-level debug \
        --redis "redis://:Sekr1t-Pw@127.0.0.1:$REDIS_TCP_PORT" q y
    assert_success
    [[ "$stderr$output" != *Sekr1t* ]] || fail "the password is shown: $stderr"
}

@test "a password in a unix:// URL or holding '@' is never shown, and warned about on the command line" {
    run --separate-stderr workq-enqueue --redis "unix://$BATS_TEST_TMPDIR/x.sock?password=Sekr1t&db=x" q x
    assert_equal "$status" 2
    [[ "$stderr" != *Sekr1t* ]] || fail "the password is shown: $stderr"
    run --separate-stderr workq-enqueue --redis "unix://$BATS_TEST_TMPDIR/x.sock?password=Sekr1t" q x
    [[ "$stderr" == *warning* ]] || fail "no warning for a password on the command line: $stderr"
    run --separate-stderr workq-enqueue --redis 'redis://:Sek@r1t@127.0.0.1:99999' q x
    assert_equal "$status" 2
    [[ "$stderr" != *r1t* ]] || fail "part of the password is shown: $stderr"
}

@test "the database number: chosen by the URL; a bad one is refused" {
    local sock=$WORKQ_TEST_REDIS_SOCKET
    run --separate-stderr workq-enqueue --redis "unix://$sock?db=3" q x
    assert_success
    assert_equal "$(rcli -n 3 hget "{$WORKQ_NAMESPACE:q}:job:$output" payload)" x
    assert_equal "$(rcli -n 0 exists "{$WORKQ_NAMESPACE:q}:job:$output")" 0

    for url in "unix://$sock?db=x" "unix://$sock?db=-1" "unix://$sock?db=" "redis://127.0.0.1:6379/abc" \
        "redis://127.0.0.1:6379/-2"; do
        run --separate-stderr workq-enqueue --redis "$url" q x
        assert_failed_cleanly 2
        [[ "$stderr" == *database* ]] || fail "$url: $stderr"
    done
    # A number the server does not have (16 databases by default): the server says so.
    run --separate-stderr workq-enqueue --redis "unix://$sock?db=99" q x
    assert_failed_cleanly 3
    [[ "$stderr" == *"database 99"* ]] || fail "$stderr"
}

@test "which server: --redis, then WORKQ_REDIS_URL, then the config file, then REDIS_URL" {
    local sock=$WORKQ_TEST_REDIS_SOCKET
    mkdir -p "$XDG_CONFIG_HOME/workq"
    printf '[redis]\nurl = "unix://%s?db=3"\n' "$sock" >"$XDG_CONFIG_HOME/workq/config.toml"
    export REDIS_URL="unix://$sock?db=4"
    export WORKQ_REDIS_URL="unix://$sock?db=2"
    # db_of ID: the database that holds the job.
    db_of() {
        local db
        for db in 1 2 3 4; do
            [ "$(rcli -n "$db" exists "{$WORKQ_NAMESPACE:q}:job:$1")" = 1 ] && echo "$db"
        done
    }
    run --separate-stderr workq-enqueue --redis "unix://$sock?db=1" q x
    assert_success
    assert_equal "$(db_of "$output")" 1

    run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$(db_of "$output")" 2

    unset WORKQ_REDIS_URL
    run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$(db_of "$output")" 3

    # The tool's own table beats [redis]: every long flag has a key in it.
    printf '[redis]\nurl = "unix://%s?db=3"\n[enqueue]\nredis = "unix://%s?db=1"\n' "$sock" "$sock" \
        >"$XDG_CONFIG_HOME/workq/config.toml"
    run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$(db_of "$output")" 1

    rm "$XDG_CONFIG_HOME/workq/config.toml"
    run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$(db_of "$output")" 4
}
