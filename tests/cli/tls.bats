#!/usr/bin/env bats
# Redis over TLS (CONTRACT.md §10, issue 17): rediss:// with the server's chain and name always
# verified, client certificates, the flags/environment/config of §10; every failure is exit 3
# with its reason within 10 s; TLS settings without a rediss:// URL are exit 2. Real
# redis-servers with --tls-port; the certificates are made here with the openssl CLI.

load helpers
source "$BATS_TEST_DIRNAME/work_helpers.bash"

# The certificates, once for the file: a CA; the server's (IP:127.0.0.1 and DNS:localhost); a
# client's; an expired server certificate; one for another name; and a CA nobody uses.
setup_file() {
    export CERTS="$BATS_FILE_TMPDIR/certs"
    mkdir -p "$CERTS"
    (
        cd "$CERTS"
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
        openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 30 -subj /CN=workq-test-ca
        openssl req -x509 "${ec[@]}" -keyout other-ca.key -out other-ca.crt -days 30 \
            -subj /CN=another-ca
        # sign NAME SUBJECT-ALT-NAMES [DAYS]: NAME.key and NAME.crt, signed by ca.
        sign() {
            openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$1"
            printf 'subjectAltName = %s\n' "$2" >"$1.ext"
            openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
                -days "${3:-30}" -extfile "$1.ext" -out "$1.crt"
        }
        sign server 'IP:127.0.0.1,DNS:localhost'
        sign client 'DNS:workq-client'
        sign expired 'IP:127.0.0.1,DNS:localhost' -1
        sign elsewhere 'DNS:elsewhere.example'
    ) >"$BATS_FILE_TMPDIR/openssl.log" 2>&1
}

setup() {
    work_setup
    OWN="$BATS_TEST_TMPDIR/own"
    mkdir -p "$OWN"
    unset WORKQ_TLS_CA_CERT WORKQ_TLS_CERT WORKQ_TLS_KEY WORKQ_TLS_SERVER_NAME
}

teardown() {
    [ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null || true
    stop_redis "$BATS_TEST_TMPDIR/plain"
    work_teardown
}

# start_tls_redis DIR [CERT-NAME] [ARGS...]: a redis-server of our own with TLS only on a free
# port of 127.0.0.1 (and a plain socket, DIR/redis.sock, for the checks), presenting
# CERT-NAME's certificate (default: server), not asking for client certificates unless ARGS
# say so. Sets TLS_PORT; the port is also in DIR/port.
start_tls_redis() {
    local dir=$1 cert=${2:-server}
    shift 2 || shift $#
    local port attempt
    for attempt in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 40000))
        rm -f "$dir/redis.pid" "$dir/redis.sock"
        redis-server --port 0 --tls-port "$port" --bind 127.0.0.1 \
            --tls-cert-file "$CERTS/$cert.crt" --tls-key-file "$CERTS/$cert.key" \
            --tls-ca-cert-file "$CERTS/ca.crt" --tls-auth-clients no \
            --unixsocket "$dir/redis.sock" --unixsocketperm 700 --save '' --appendonly yes \
            --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" "$@"
        if wait_until 3 test -S "$dir/redis.sock" && redis-cli -s "$dir/redis.sock" ping >/dev/null; then
            echo "$port" >"$dir/port"
            TLS_PORT=$port
            return 0
        fi
        stop_redis "$dir"
        : >"$dir/redis.log"
    done
    echo "could not start a TLS redis-server on a free port" >&2
    return 1
}

# The usual way in: our server, trusting our CA.
use_tls() {
    export WORKQ_REDIS_URL="rediss://127.0.0.1:$TLS_PORT"
    export WORKQ_TLS_CA_CERT="$CERTS/ca.crt"
    export WORKQ_TEST_REDIS_SOCKET="$OWN/redis.sock"
}

# Exit 3 within 10 s, nothing on stdout, the reason (a fixed string) on stderr.
assert_refused_with() {
    local start=$(now_ms)
    run --separate-stderr timeout 20 "${@:2}"
    local took=$(($(now_ms) - start))
    assert_equal "$status" 3
    assert_equal "$output" ""
    [[ "$stderr" == *"$1"* ]] || fail "the reason '$1' is not in: $stderr"
    [ "$took" -lt 10000 ] || fail "took ${took} ms"
}

tls_clients() { redis-cli -s "$OWN/redis.sock" client list | grep -c 'cmd=' || true; }

@test "every tool over rediss://: enqueue, queue, dlq, status (naming TLS and the verified name), work" {
    start_tls_redis "$OWN"
    use_tls
    local id
    id=$(workq-enqueue q payload-1)
    run workq-queue ls q
    assert_success
    assert_output --partial "$id"
    run --separate-stderr workq-status
    assert_success
    assert_output --partial "rediss://127.0.0.1:$TLS_PORT"
    assert_output --partial "TLS"
    assert_output --partial "verified as 127.0.0.1"
    run --separate-stderr workq-status --json
    assert_success
    [[ "$(jq -r .server.transport <<<"$output")" == TLS* ]] || fail "$output"
    run workq-work --burst q -- sh -c 'cat >"$0"' "$D/got"
    assert_success
    # The worker's log says what it verified.
    assert_output --partial "connected to Redis over TLSv1"
    assert_output --partial "server verified as 127.0.0.1"
    assert_equal "$(cat "$D/got")" payload-1
    run workq-dlq count q
    assert_success
    assert_output 0
    # The jobs are on the TLS server, and nothing came in any other way.
    assert_equal "$(rcli hget "{$WORKQ_NAMESPACE:q}:job:$id" state)" succeeded
}

@test "with no --tls-ca-cert the system's CAs are used: a hashed directory (SSL_CERT_DIR) or a bundle (SSL_CERT_FILE)" {
    start_tls_redis "$OWN"
    use_tls
    unset WORKQ_TLS_CA_CERT
    # The system's own store does not know our CA: refused, with the way out named.
    SSL_CERT_DIR="$BATS_TEST_TMPDIR/none" SSL_CERT_FILE="$BATS_TEST_TMPDIR/none.pem" \
        assert_refused_with "--tls-ca-cert" workq-enqueue q x
    # A directory of hash links (what update-ca-certificates makes) that holds it: accepted.
    mkdir -p "$BATS_TEST_TMPDIR/hashed"
    cp "$CERTS/ca.crt" "$BATS_TEST_TMPDIR/hashed/"
    openssl rehash "$BATS_TEST_TMPDIR/hashed"
    SSL_CERT_DIR="$BATS_TEST_TMPDIR/hashed" run --separate-stderr workq-enqueue q x
    assert_success
    # A bundle of the user's (SSL_CERT_FILE) is honoured even where a hashed directory exists.
    SSL_CERT_FILE="$CERTS/ca.crt" SSL_CERT_DIR="$BATS_TEST_TMPDIR/none" \
        run --separate-stderr workq-enqueue q y
    assert_success
    SSL_CERT_FILE="$CERTS/ca.crt" run --separate-stderr workq-enqueue q z
    assert_success
    # Three jobs made, the refused one not.
    WORKQ_TLS_CA_CERT="$CERTS/ca.crt" run workq-queue ls q --ids
    assert_success
    assert_equal "${#lines[@]}" 3
}

@test "a host name is verified against the certificate's DNS names, and --tls-server-name names another" {
    start_tls_redis "$OWN"
    use_tls
    WORKQ_REDIS_URL="rediss://localhost:$TLS_PORT" run --separate-stderr workq-enqueue q x
    assert_success
    # The server presents a certificate for elsewhere.example only.
    stop_redis "$OWN"
    wait_until 5 process_gone "$(cat "$OWN/redis.pid")"
    start_tls_redis "$OWN" elsewhere
    use_tls
    assert_refused_with "is not for '127.0.0.1'" workq-enqueue q x
    run --separate-stderr workq-enqueue --tls-server-name elsewhere.example q x
    assert_success
    WORKQ_TLS_SERVER_NAME=elsewhere.example run --separate-stderr workq-queue ls q
    assert_success
}

@test "a server certificate from an unknown CA, expired, or for another name: exit 3 with the reason" {
    start_tls_redis "$OWN"
    use_tls
    assert_refused_with "not signed by a trusted CA" workq-enqueue --tls-ca-cert "$CERTS/other-ca.crt" q x
    # The system's store does not know our test CA either.
    WORKQ_TLS_CA_CERT= assert_refused_with "not signed by a trusted CA" workq-queue ls q
    stop_redis "$OWN"
    wait_until 5 process_gone "$(cat "$OWN/redis.pid")"
    start_tls_redis "$OWN" expired
    use_tls
    assert_refused_with "has expired" workq-enqueue q x
    assert_refused_with "has expired" workq-status
    assert_equal "$(rcli dbsize)" 0
}

@test "mutual TLS: a server that requires a client certificate refuses none, takes ours" {
    start_tls_redis "$OWN" server --tls-auth-clients yes
    use_tls
    assert_refused_with "requires a client certificate" workq-enqueue q x
    # A certificate the server's CA did not sign is refused too.
    cp "$CERTS/other-ca.crt" "$D/stranger.crt"
    cp "$CERTS/other-ca.key" "$D/stranger.key"
    assert_refused_with "client certificate" \
        workq-enqueue --tls-cert "$D/stranger.crt" --tls-key "$D/stranger.key" q x
    local id
    id=$(workq-enqueue --tls-cert "$CERTS/client.crt" --tls-key "$CERTS/client.key" q x)
    [ -n "$id" ]
    WORKQ_TLS_CERT="$CERTS/client.crt" WORKQ_TLS_KEY="$CERTS/client.key" \
        run workq-work --burst q -- true
    assert_success
    assert_equal "$(rcli hget "{$WORKQ_NAMESPACE:q}:job:$id" state)" succeeded
}

@test "plaintext to a TLS port, and TLS to a plain port: exit 3 saying which" {
    start_tls_redis "$OWN"
    use_tls
    WORKQ_TLS_CA_CERT= assert_refused_with "rediss://" \
        workq-enqueue --redis "redis://127.0.0.1:$TLS_PORT" q x
    mkdir -p "$BATS_TEST_TMPDIR/plain"
    start_redis_tcp "$BATS_TEST_TMPDIR/plain"
    assert_refused_with "TLS" workq-enqueue --redis "rediss://127.0.0.1:$REDIS_TCP_PORT" q x
    assert_refused_with "TLS" workq-work --redis "rediss://127.0.0.1:$REDIS_TCP_PORT" --burst q -- true
}

@test "TLS settings without a rediss:// URL are usage errors (exit 2), and so are bad files" {
    start_tls_redis "$OWN"
    use_tls
    run --separate-stderr workq-enqueue --redis "unix://$OWN/redis.sock" --tls-ca-cert "$CERTS/ca.crt" q x
    assert_equal "$status" 2
    [[ "$stderr" == *"--tls-ca-cert"*"rediss://"* ]] || fail "$stderr"
    WORKQ_REDIS_URL="redis://127.0.0.1:1" run --separate-stderr workq-status --tls-server-name x
    assert_equal "$status" 2
    # The embedded server (no URL anywhere) takes no TLS settings either.
    unset WORKQ_REDIS_URL WORKQ_TLS_CA_CERT
    WORKQ_TLS_CERT="$CERTS/client.crt" run --separate-stderr workq-queue ls q
    assert_equal "$status" 2
    [[ "$stderr" == *WORKQ_TLS_CERT* ]] || fail "$stderr"
    use_tls
    run --separate-stderr workq-enqueue --tls-cert "$CERTS/client.crt" q x
    assert_equal "$status" 2
    [[ "$stderr" == *"--tls-key"* ]] || fail "$stderr"
    run --separate-stderr workq-enqueue --tls-ca-cert "$D/nothing-here.pem" q x
    assert_equal "$status" 2
    [[ "$stderr" == *"$D/nothing-here.pem"* ]] || fail "$stderr"
    echo "not a certificate" >"$D/junk.pem"
    run --separate-stderr workq-enqueue --tls-ca-cert "$D/junk.pem" q x
    assert_equal "$status" 2
    [[ "$stderr" == *"$D/junk.pem"* ]] || fail "$stderr"
    run --separate-stderr workq-enqueue --tls-cert "$CERTS/client.crt" --tls-key "$CERTS/server.key" q x
    assert_equal "$status" 2
    [[ "$stderr" == *"does not belong"* ]] || fail "$stderr"
    assert_equal "$(rcli dbsize)" 0
}

@test "the config file's [redis] tls_* keys and a tool's tls-* keys are used" {
    start_tls_redis "$OWN" server --tls-auth-clients yes
    mkdir -p "$XDG_CONFIG_HOME/workq"
    cat >"$XDG_CONFIG_HOME/workq/config.toml" <<EOF
[redis]
url = "rediss://127.0.0.1:$TLS_PORT"
tls_ca_cert = "$CERTS/ca.crt"
tls_cert = "$CERTS/client.crt"
tls_key = "$CERTS/client.key"

[status]
tls-server-name = "localhost"
EOF
    unset WORKQ_REDIS_URL
    export WORKQ_TEST_REDIS_SOCKET="$OWN/redis.sock"
    run --separate-stderr workq-enqueue q x
    assert_success
    [ -z "$stderr" ] || fail "warnings: $stderr"
    run --separate-stderr workq-status
    assert_success
    assert_output --partial "verified as localhost"
}

@test "a password over TLS: accepted, never in argv, the environment of a handler, or a log" {
    start_tls_redis "$OWN" server --requirepass tls-secret-pw
    use_tls
    rcli() { redis-cli -s "$OWN/redis.sock" --no-auth-warning -a tls-secret-pw "$@"; }
    echo tls-secret-pw >"$D/pw"
    chmod 600 "$D/pw"
    local id
    id=$(workq-enqueue --password-file "$D/pw" q x 2>"$D/enqueue.log")
    start_worker w --password-file "$D/pw" --log-level debug q -- sh -c 'env >"$0"' "$D/env"
    wait_until 20 state_is q "$id" succeeded
    ! grep -r tls-secret-pw /proc/"$LAST_PID"/cmdline "$D/env" "$D/w.log" "$D/enqueue.log"
    WORKQ_REDIS_PASSWORD=wrong run --separate-stderr workq-enqueue q y
    assert_equal "$status" 3
    [[ "$stderr" != *wrong* || "$stderr" == *WRONGPASS* ]] || fail "$stderr"
}

@test "a worker over TLS rides out a server restart and the proxy's resets" {
    start_tls_redis "$OWN"
    use_tls
    workq-fault-proxy --listen 127.0.0.1:0 --upstream "127.0.0.1:$TLS_PORT" \
        --control "$D/proxy.sock" >"$D/proxy.port" 2>"$D/proxy.log" 3>&- &
    PROXY_PID=$!
    wait_until 10 test -s "$D/proxy.port"
    wait_until 5 test -S "$D/proxy.sock"
    # The certificate names 127.0.0.1, so the proxy's address verifies too.
    export WORKQ_REDIS_URL="rediss://127.0.0.1:$(cat "$D/proxy.port")"
    start_worker w --lease 2s q -- sh -c 'cat >>"$0"; echo >>"$0"' "$D/done"
    local w=$LAST_PID
    seq -f 'a%g' 5 | workq-enqueue q >"$D/ids"
    wait_until 20 has_lines "$D/done" 5
    workq-fault-proxy --control "$D/proxy.sock" reset >/dev/null
    seq -f 'b%g' 5 | workq-enqueue q >>"$D/ids"
    wait_until 30 has_lines "$D/done" 10
    assert_log w "lost connection to Redis"
    # The server goes away and comes back (same port, its append-only file).
    local pid
    pid=$(cat "$OWN/redis.pid")
    rcli shutdown >/dev/null 2>&1 || true
    wait_until 10 process_gone "$pid"
    redis-server --port 0 --tls-port "$TLS_PORT" --bind 127.0.0.1 \
        --tls-cert-file "$CERTS/server.crt" --tls-key-file "$CERTS/server.key" \
        --tls-ca-cert-file "$CERTS/ca.crt" --tls-auth-clients no \
        --unixsocket "$OWN/redis.sock" --unixsocketperm 700 --save '' --appendonly yes \
        --daemonize yes --pidfile "$OWN/redis.pid" --logfile "$OWN/redis.log" --dir "$OWN"
    wait_until 10 rcli ping
    wait_until 30 log_has w "reconnected"
    seq -f 'c%g' 5 | workq-enqueue q >>"$D/ids"
    wait_until 30 has_lines "$D/done" 15
    alive "$w"
    for id in $(cat "$D/ids"); do
        assert_equal "$(rcli hget "{$WORKQ_NAMESPACE:q}:job:$id" state)" succeeded
    done
    ! grep -q "Sanitizer" "$D/w.log"
}
