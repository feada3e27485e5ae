#!/usr/bin/env bats
# Redis Cluster over TLS (CONTRACT.md §10, issues 17 and 19): three masters and a replica of each
# serving TLS only (tls-port, port 0), their cluster bus and replication over TLS too
# (tls-cluster, tls-replication); the tools reach them through a rediss:// seed list, trusting
# the test's CA. The certificates are made here with the openssl CLI (as tests/cli/tls.bats does).

load cluster_helpers

# The certificates, once for the file: a CA and the nodes' certificate (IP:127.0.0.1).
make_certs() {
    export CERTS="$BATS_FILE_TMPDIR/certs"
    mkdir -p "$CERTS"
    (
        cd "$CERTS"
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
        openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 30 -subj /CN=workq-test-ca
        openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=server
        printf 'subjectAltName = IP:127.0.0.1,DNS:localhost\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
            -extfile server.ext -out server.crt
    ) >"$BATS_FILE_TMPDIR/openssl.log" 2>&1
}

setup_file() {
    make_certs
    export CLUSTER_CERTS=$CERTS
    cluster_file_setup
}
teardown_file() { cluster_file_teardown; }
setup() {
    cluster_setup
    unset WORKQ_TLS_CA_CERT WORKQ_TLS_CERT WORKQ_TLS_KEY WORKQ_TLS_SERVER_NAME
}
teardown() { cluster_teardown; }

@test "TLS cluster: enqueue, a worker per queue and status on queues of three masters through a rediss:// seed list" {
    [[ "$WORKQ_REDIS_URL" == rediss://*,* ]] || fail "not a TLS seed list: $WORKQ_REDIS_URL"
    # The nodes speak TLS only: a plain connection to a seed gets no answer from redis.
    run redis-cli -p "$(cluster_port n1)" ping
    [[ "$output" != PONG ]] || fail "n1 answers plain text"
    local queues q
    queues=$(queues_on_masters 3)
    [ "$(wc -l <<<"$queues")" -eq 3 ] || fail "queues: $queues"
    for q in $queues; do
        # The CA by flag here, by the environment for the worker below.
        run --separate-stderr workq-enqueue --tls-ca-cert "$CERTS/ca.crt" "$q" a b c
        assert_success
        [ "${#lines[@]}" -eq 3 ] || fail "expected 3 ids: $output / $stderr"
        printf '%s\n' "${lines[@]}" >"$D/ids.$q"
        use_queue_node "$q"
        assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:$q}:waiting:0")" 3
    done
    export WORKQ_TLS_CA_CERT="$CERTS/ca.crt"
    for q in $queues; do
        run --separate-stderr workq-work --burst "$q" -- "$HANDLERS/ledger.sh"
        assert_success
        use_queue_node "$q"
        check_invariants "$q" "$D/ids.$q"
    done
    run --separate-stderr workq-status --json
    assert_success
    assert_equal "$(jq -r .server.topology.kind <<<"$output")" cluster
    assert_equal "$(jq -r '.server.topology.masters | length' <<<"$output")" 3
    for q in $queues; do
        assert_equal "$(jq -r --arg q "$q" '.queues[] | select(.name == $q) | .succeeded' <<<"$output")" 3
        assert_equal "$(jq -r --arg q "$q" '.queues[] | select(.name == $q) | .node' <<<"$output")" \
            "127.0.0.1:$(cluster_port "$(queue_master "$q")")"
    done
}

@test "TLS cluster: without the CA the nodes' certificates do not verify: exit 3 with the reason" {
    q=$(queues_on_masters 1)
    run --separate-stderr workq-enqueue "$q" x
    assert_equal "$status" 3
    [[ "$stderr" == *certificate* ]] || fail "$stderr"
    # TLS settings with a plain redis:// seed list are a usage error.
    run --separate-stderr workq-enqueue --redis "redis://127.0.0.1:$(cluster_port n1)" \
        --tls-ca-cert "$CERTS/ca.crt" "$q" x
    assert_equal "$status" 2
}
