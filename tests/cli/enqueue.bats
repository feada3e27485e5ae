#!/usr/bin/env bats
# workq-enqueue (CONTRACT.md §3, issue 4): payloads from arguments and stdin with the framing
# rules, every option, every bad input, a server lost mid-stream, a million lines in bounded
# memory. --wait is tested with the worker.

load helpers

# One cluster for the file when WORKQ_TEST_TOPOLOGY=cluster (helpers.bash).
setup_file() { workq_test_setup_file; }
teardown_file() { workq_test_teardown_file; }

setup() {
    workq_test_setup
    OWN="$BATS_TEST_TMPDIR/own"
    mkdir -p "$OWN"
}

teardown() {
    stop_redis "$OWN"
    workq_test_teardown
}

# payloads_of QUEUE IDS_FILE: each job's payload, one per line, in the order of the ids.
payloads_of() {
    sed "s/.*/HGET {$WORKQ_NAMESPACE:$1}:job:& payload/" "$2" | rcli
}

# has_lines FILE N: the file exists and holds at least N lines (for wait_until).
has_lines() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }

# assert_payload QUEUE ID BYTES_FILE: the job's payload is exactly the bytes of the file.
assert_payload() {
    raw_payload_to "$BATS_TEST_TMPDIR/actual" "$1" "$2"
    cmp "$BATS_TEST_TMPDIR/actual" "$3" ||
        fail "payload of $2: $(od -c "$BATS_TEST_TMPDIR/actual" | head -5) expected $(od -c "$3" | head -5)"
}

# bats test_tags=cluster
@test "each PAYLOAD argument is one job; ids on stdout, one per line, in input order" {
    run --separate-stderr workq-enqueue q alpha 'two words' gamma
    assert_success
    assert_equal "$stderr" ""
    assert_equal "${#lines[@]}" 3
    local line
    for line in "${lines[@]}"; do
        [[ "$line" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$ ]] || fail "not an id: $line"
    done
    printf '%s\n' "${lines[@]}" >"$BATS_TEST_TMPDIR/ids"
    assert_equal "$(payloads_of q "$BATS_TEST_TMPDIR/ids")" $'alpha\ntwo words\ngamma'
    assert_raw_state q "${lines[0]}" waiting
    assert_equal "$(job_field q "${lines[0]}" max)" 10
    assert_equal "$(job_attempts q "${lines[0]}")" 0
}

@test "stdin lines: '\\n' is not part of the payload, empty lines are skipped, a last line without '\\n' is a job" {
    printf 'one\n\n\ntwo\r\n  \nthree' >"$BATS_TEST_TMPDIR/in"
    run --separate-stderr workq-enqueue q <"$BATS_TEST_TMPDIR/in"
    assert_success
    assert_equal "${#lines[@]}" 4
    printf 'one' >"$BATS_TEST_TMPDIR/p1"
    printf 'two\r' >"$BATS_TEST_TMPDIR/p2"
    printf '  ' >"$BATS_TEST_TMPDIR/p3"
    printf 'three' >"$BATS_TEST_TMPDIR/p4"
    local i
    for i in 0 1 2 3; do assert_payload q "${lines[$i]}" "$BATS_TEST_TMPDIR/p$((i + 1))"; done
    assert_equal "$(job_count q)" 4
}

@test "many stdin lines keep their order across chunks" {
    seq 5000 | workq-enqueue q >"$BATS_TEST_TMPDIR/ids"
    assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/ids")" 5000
    assert_equal "$(payloads_of q "$BATS_TEST_TMPDIR/ids" | md5sum)" "$(seq 5000 | md5sum)"
    assert_equal "$(sort -u "$BATS_TEST_TMPDIR/ids" | wc -l)" 5000
}

@test "-0/--null: NUL-separated records, same rules; newlines stay in the payload" {
    printf 'a\0\0b\nc\0last' >"$BATS_TEST_TMPDIR/in"
    run --separate-stderr workq-enqueue -0 q <"$BATS_TEST_TMPDIR/in"
    assert_success
    assert_equal "${#lines[@]}" 3
    printf 'a' >"$BATS_TEST_TMPDIR/p1"
    printf 'b\nc' >"$BATS_TEST_TMPDIR/p2"
    printf 'last' >"$BATS_TEST_TMPDIR/p3"
    local i
    for i in 0 1 2; do assert_payload q "${lines[$i]}" "$BATS_TEST_TMPDIR/p$((i + 1))"; done

    printf 'x\0y\0' | workq-enqueue --null q >"$BATS_TEST_TMPDIR/ids"
    assert_equal "$(payloads_of q "$BATS_TEST_TMPDIR/ids")" $'x\ny'
}

# bats test_tags=cluster
@test "--whole: all of stdin, bytes exactly (NUL, trailing newlines), is exactly one job" {
    printf 'first\n\0second\r\n\n\n\xff' >"$BATS_TEST_TMPDIR/in"
    head -c 300000 /dev/urandom >>"$BATS_TEST_TMPDIR/in"
    printf '\n\n' >>"$BATS_TEST_TMPDIR/in"
    run --separate-stderr workq-enqueue --whole q <"$BATS_TEST_TMPDIR/in"
    assert_success
    assert_equal "${#lines[@]}" 1
    assert_payload q "$output" "$BATS_TEST_TMPDIR/in"
    assert_equal "$(job_count q)" 1

    # Empty stdin is still exactly one job, with an empty payload.
    run --separate-stderr workq-enqueue --whole q2 </dev/null
    assert_success
    assert_equal "${#lines[@]}" 1
    : >"$BATS_TEST_TMPDIR/empty"
    assert_payload q2 "$output" "$BATS_TEST_TMPDIR/empty"
}

@test "a payload starting with '-' after --" {
    run --separate-stderr workq-enqueue q -- -5 --priority
    assert_success
    printf '%s\n' "${lines[@]}" >"$BATS_TEST_TMPDIR/ids"
    assert_equal "$(payloads_of q "$BATS_TEST_TMPDIR/ids")" $'-5\n--priority'
    # Without --, an unknown option is a usage error, and nothing is made.
    run --separate-stderr workq-enqueue q --frobnicate
    assert_equal "$status" 2
    [[ "$stderr" == *--frobnicate* ]] || fail "$stderr"
    assert_equal "$(job_count q)" 2
}

# bats test_tags=cluster
@test "--priority: stored with the job, -1000000..1000000; outside or not a number is exit 2" {
    run --separate-stderr workq-enqueue --priority 5 q x
    assert_success
    assert_equal "$(job_field q "$output" prio)" 5
    assert_equal "$(rcli lrange "{$WORKQ_NAMESPACE:q}:waiting:5" 0 -1)" "$output"
    run --separate-stderr workq-enqueue --priority 1000000 q x
    assert_success
    run --separate-stderr workq-enqueue --priority -1000000 q x
    assert_success
    assert_equal "$(job_field q "$output" prio)" -1000000
    local bad
    for bad in 1000001 -1000001 abc 1.5 ''; do
        run --separate-stderr workq-enqueue --priority "$bad" q x
        assert_equal "$status" 2
        [[ "$stderr" == *--priority* ]] || fail "$bad: $stderr"
    done
    assert_equal "$(job_count q)" 3
}

# bats test_tags=cluster
@test "--delay: the job is scheduled that far ahead (server clock); a bad duration is exit 2" {
    local server_ms
    server_ms=$(rcli time | head -1)000
    run --separate-stderr workq-enqueue --delay 1h30m q x
    assert_success
    assert_raw_state q "$output" scheduled
    local due
    due=$(rcli zscore "{$WORKQ_NAMESPACE:q}:scheduled" "$output")
    local expected=$((server_ms + 5400000))
    [ "${due%.*}" -ge $((expected - 5000)) ] && [ "${due%.*}" -le $((expected + 5000)) ] ||
        fail "due at $due, expected about $expected"
    local bad
    for bad in 5x -1s 1h- '' 'soon'; do
        run --separate-stderr workq-enqueue --delay "$bad" q x
        assert_equal "$status" 2
        [[ "$stderr" == *--delay* ]] || fail "$bad: $stderr"
    done
    assert_equal "$(job_count q)" 1
}

@test "--at: RFC 3339 or epoch seconds; a past time runs now; a bad time is exit 2" {
    local at id
    for at in 2030-01-01T00:00:00Z 2030-01-01T01:00:00+01:00 1893456000 1893456000.000; do
        id=$(workq-enqueue --at "$at" q x)
        assert_raw_state q "$id" scheduled
        assert_equal "$(rcli zscore "{$WORKQ_NAMESPACE:q}:scheduled" "$id")" 1893456000000
    done
    id=$(workq-enqueue --at 1893456000.25 q x)
    assert_equal "$(rcli zscore "{$WORKQ_NAMESPACE:q}:scheduled" "$id")" 1893456000250
    id=$(workq-enqueue --at 2001-02-03T04:05:06Z q x)
    assert_raw_state q "$id" waiting
    for at in tomorrow 2030-13-01T00:00:00Z 2030-01-01 '' 12abc; do
        run --separate-stderr workq-enqueue --at "$at" q x
        assert_equal "$status" 2
        [[ "$stderr" == *--at* ]] || fail "$at: $stderr"
    done
    run --separate-stderr workq-enqueue --at 1893456000 --delay 5m q x
    assert_equal "$status" 2
    assert_equal "$(job_count q)" 6
}

@test "--at without a zone is the local time of TZ, as date reads it; a skipped local time is exit 2" {
    local id
    id=$(TZ=Europe/Berlin workq-enqueue --at 2030-01-01T01:00:00 q x)
    assert_equal "$(rcli zscore "{$WORKQ_NAMESPACE:q}:scheduled" "$id")" 1893456000000
    id=$(TZ=America/New_York workq-enqueue --at '2030-07-01 08:00:00' q x)
    assert_equal "$(rcli zscore "{$WORKQ_NAMESPACE:q}:scheduled" "$id")" \
        "$(TZ=America/New_York date -d '2030-07-01 08:00:00' +%s)000"
    run --separate-stderr env TZ=Europe/Berlin workq-enqueue --at 2030-03-31T02:30:00 q x
    assert_failure 2
    [[ "$stderr" == *"--at"*"local time"* ]] || fail "$stderr"
    run workq-enqueue --help
    assert_output --partial "without a zone: local time"
}

@test "--max-attempts: stored with the job, default 10; less than 1 is exit 2" {
    run --separate-stderr workq-enqueue --max-attempts 3 q x
    assert_success
    assert_equal "$(job_field q "$output" max)" 3
    run --separate-stderr workq-enqueue --max-attempts 1 q x
    assert_success
    assert_equal "$(job_field q "$output" max)" 1
    local bad
    for bad in 0 -1 many 2.5; do
        run --separate-stderr workq-enqueue --max-attempts "$bad" q x
        assert_equal "$status" 2
        [[ "$stderr" == *--max-attempts* ]] || fail "$bad: $stderr"
    done
    assert_equal "$(job_count q)" 2
}

@test "--timeout: stored with the job in ms; 0 means none; a bad duration is exit 2" {
    run --separate-stderr workq-enqueue --timeout 90s q x
    assert_success
    assert_equal "$(job_field q "$output" timeout)" 90000
    run --separate-stderr workq-enqueue --timeout 1.5s q x
    assert_equal "$(job_field q "$output" timeout)" 1500
    run --separate-stderr workq-enqueue --timeout 0 q x
    assert_success
    assert_equal "$(job_field q "$output" timeout)" 0
    run --separate-stderr workq-enqueue q x
    assert_equal "$(job_field q "$output" timeout)" "" # the worker's
    run --separate-stderr workq-enqueue --timeout forever q x
    assert_equal "$status" 2
    [[ "$stderr" == *--timeout* ]] || fail "$stderr"
    assert_equal "$(job_count q)" 4
}

# bats test_tags=cluster
@test "--unique: while one is pending, a second enqueue prints its id and makes nothing" {
    run --separate-stderr workq-enqueue --unique nightly q first
    assert_success
    local first=$output
    run --separate-stderr workq-enqueue --unique nightly q second
    assert_success
    assert_equal "$output" "$first"
    # Several payloads under one key: one job.
    run --separate-stderr workq-enqueue --unique nightly q third fourth
    assert_equal "$output" "$first"$'\n'"$first"
    assert_equal "$(job_count q)" 1
    assert_equal "$(job_field q "$first" payload)" first
    # A scheduled job holds its key too; another key is another job.
    run --separate-stderr workq-enqueue --unique later --delay 1h q a
    local later=$output
    run --separate-stderr workq-enqueue --unique later q b
    assert_equal "$output" "$later"
    run --separate-stderr workq-enqueue --unique other q c
    [ "$output" != "$first" ] && [ "$output" != "$later" ] || fail "same id"
    assert_equal "$(job_count q)" 3
}

# bats test_tags=cluster
@test "--id: the caller's id; a re-run prints it and makes nothing; a bad id is exit 2" {
    run --separate-stderr workq-enqueue --id invoice-42 q first
    assert_success
    assert_equal "$output" invoice-42
    run --separate-stderr workq-enqueue --id invoice-42 q second
    assert_success
    assert_equal "$output" invoice-42
    assert_equal "$(job_count q)" 1
    assert_equal "$(job_field q invoice-42 payload)" first
    # 200 characters is the longest id.
    local long
    long=$(printf 'a%.0s' $(seq 200))
    run --separate-stderr workq-enqueue --id "$long" q x
    assert_success
    assert_equal "$output" "$long"
    local bad
    for bad in -x 'a b' a/b a:b '{a}' "${long}b" .hidden 'é'; do
        run --separate-stderr workq-enqueue --id "$bad" q x
        assert_equal "$status" 2
        assert_equal "$output" ""
        [[ "$stderr" == *"id"* ]] || fail "$bad: $stderr"
    done
    run --separate-stderr workq-enqueue --id two-jobs q a b
    assert_equal "$status" 2
    assert_equal "$(job_count q)" 2
}

# Issue 23, item 9: the check of the other queues ran outside the enqueue script, and 2 of 30
# concurrent pairs made one id in two queues. Reserved namespace-wide first, it is one job.
# bats test_tags=cluster
@test "--id is unique across queues when two callers race one id into two queues" {
    local i
    for i in $(seq 25); do
        workq-enqueue --id "race-$i" qa a >"$BATS_TEST_TMPDIR/a.$i" &
        workq-enqueue --id "race-$i" qb b >"$BATS_TEST_TMPDIR/b.$i" &
    done
    wait
    for i in $(seq 25); do
        assert_equal "$(cat "$BATS_TEST_TMPDIR/a.$i")" "race-$i"
        assert_equal "$(cat "$BATS_TEST_TMPDIR/b.$i")" "race-$i"
        local made=0
        job_exists qa "race-$i" && made=$((made + 1))
        job_exists qb "race-$i" && made=$((made + 1))
        [ "$made" = 1 ] || fail "race-$i was made in $made queues"
    done
    # The id names its queue for a while (a reservation); a later caller for another queue is told
    # where the job is and makes nothing.
    run --separate-stderr workq-enqueue --id race-1 qc c
    assert_success
    assert_equal "$output" race-1
    [[ "$stderr" == *"exists in queue q"* ]] || fail "$stderr"
    job_exists qc race-1 && fail "made in a third queue"
    # A re-run for the same queue after a crash between the reservation and the job completes it.
    rcli set "{$WORKQ_NAMESPACE}:id:half-done" qa px 60000 >/dev/null
    run --separate-stderr workq-enqueue --id half-done qa x
    assert_success
    assert_equal "$(job_field qa half-done payload)" x
}

@test "--replicas: a server without replicas falls short: ids printed, the shortfall named, exit 1; bad values are exit 2" {
    run --separate-stderr workq-enqueue --replicas 1 --replicas-timeout 100ms q a b
    assert_equal "$status" 1
    [ "${#lines[@]}" -eq 2 ] || fail "the ids are not printed: $output"
    [[ "$stderr" == *"--replicas 1: 2 job(s) reached only 0 replica(s) within 100ms"* ]] || fail "$stderr"
    assert_equal "$(job_count q)" 2
    # --id too.
    run --separate-stderr workq-enqueue --replicas 1 --replicas-timeout 100ms --id one q x
    assert_equal "$status" 1
    assert_output one
    [[ "$stderr" == *"reached only 0 replica(s)"* ]] || fail "$stderr"
    # 0: no wait.
    run --separate-stderr workq-enqueue --replicas 0 q c
    assert_success
    for bad in '--replicas -1' '--replicas x' '--replicas 1001' '--replicas 1 --replicas-timeout 5x' \
        '--replicas-timeout 1s'; do
        run --separate-stderr workq-enqueue $bad q d
        assert_equal "$status" 2
        [[ "$stderr" == *replicas* ]] || fail "$bad: $stderr"
    done
    assert_equal "$(job_count q)" 4
    # From the config file's [enqueue] table (CONTRACT.md section 10).
    mkdir -p "$XDG_CONFIG_HOME/workq"
    printf '[enqueue]\nreplicas = 1\nreplicas-timeout = "100ms"\n' >"$XDG_CONFIG_HOME/workq/config.toml"
    run --separate-stderr workq-enqueue q e
    assert_equal "$status" 1
    [[ "$stderr" == *"--replicas 1: 1 job(s) reached only 0 replica(s) within 100ms"* ]] || fail "$stderr"
    assert_equal "$(job_count q)" 5
}

@test "a payload argument or --whole input over the limit is exit 2, and nothing is enqueued" {
    run --separate-stderr workq-enqueue --max-payload 10 q short 12345678901 other
    assert_equal "$status" 2
    assert_equal "$output" ""
    [[ "$stderr" == *"payload 2"* ]] || fail "the payload is not named: $stderr"
    # An argument cannot hold 1 MiB (Linux caps one at 128 KiB): the limit is lowered instead.
    run --separate-stderr workq-enqueue --max-payload 64KiB q short "$(head -c 65537 /dev/zero | tr '\0' x)"
    assert_equal "$status" 2
    assert_equal "$(job_count q)" 0

    # --whole with the default limit: 1 MiB is fine, one byte more is not.
    head -c 1048576 /dev/urandom >"$BATS_TEST_TMPDIR/1mib"
    run --separate-stderr workq-enqueue --whole q <"$BATS_TEST_TMPDIR/1mib"
    assert_success
    assert_payload q "$output" "$BATS_TEST_TMPDIR/1mib"
    printf 'x' >>"$BATS_TEST_TMPDIR/1mib"
    run --separate-stderr workq-enqueue --whole q2 <"$BATS_TEST_TMPDIR/1mib"
    assert_equal "$status" 2
    assert_equal "$output" ""
    [[ "$stderr" == *limit* ]] || fail "$stderr"
    assert_equal "$(job_count q2)" 0
}

@test "a stream stops at the first line over the limit: earlier jobs stay, stderr names the line, exit 2" {
    { printf 'a\nb\n'; head -c 2000000 /dev/zero | tr '\0' x; printf '\nc\n'; } >"$BATS_TEST_TMPDIR/in"
    run --separate-stderr workq-enqueue q <"$BATS_TEST_TMPDIR/in"
    assert_equal "$status" 2
    assert_equal "${#lines[@]}" 2
    [[ "$stderr" == *"line 3"* ]] || fail "the line is not named: $stderr"
    printf '%s\n' "${lines[@]}" >"$BATS_TEST_TMPDIR/ids"
    assert_equal "$(payloads_of q "$BATS_TEST_TMPDIR/ids")" $'a\nb'
    assert_equal "$(job_count q)" 2

    # The same for NUL-separated records, with a lowered limit (an empty record is skipped but
    # still counted).
    printf 'one\0\0two\0%s\0three\0' "$(head -c 101 /dev/zero | tr '\0' y)" >"$BATS_TEST_TMPDIR/in0"
    run --separate-stderr workq-enqueue -0 --max-payload 100 q0 <"$BATS_TEST_TMPDIR/in0"
    assert_equal "$status" 2
    assert_equal "${#lines[@]}" 2
    [[ "$stderr" == *"record 4"* ]] || fail "the record is not named: $stderr"
    assert_equal "$(job_count q0)" 2
}

@test "empty stdin: no jobs, exit 0, and a note on stderr" {
    run --separate-stderr workq-enqueue q </dev/null
    assert_success
    assert_equal "$output" ""
    [[ "$stderr" == *"no jobs"* || "$stderr" == *"no payload"* ]] || fail "no note: $stderr"
    run --separate-stderr workq-enqueue q <<<$'\n\n'
    assert_success
    assert_equal "$output" ""
    [ -n "$stderr" ] || fail "no note"
    run --separate-stderr workq-enqueue -0 q < <(printf '\0\0')
    assert_success
    assert_equal "$output" ""
    assert_equal "$(job_count q)" 0
}

@test "invalid UTF-8 is kept as bytes, from arguments and stdin" {
    printf '\xff\xfe\x80caf\xe9' >"$BATS_TEST_TMPDIR/bytes"
    run --separate-stderr workq-enqueue q "$(cat "$BATS_TEST_TMPDIR/bytes")"
    assert_success
    assert_payload q "$output" "$BATS_TEST_TMPDIR/bytes"
    run --separate-stderr workq-enqueue q <"$BATS_TEST_TMPDIR/bytes"
    assert_success
    assert_payload q "$output" "$BATS_TEST_TMPDIR/bytes"
}

@test "-q/--quiet silences diagnostics but stdout keeps the ids (stdout is data)" {
    run --separate-stderr workq-enqueue -q q a b
    assert_success
    assert_equal "${#lines[@]}" 2
    assert_equal "$stderr" ""
    assert_equal "$(raw_job_state q "${lines[0]}")" waiting
    run --separate-stderr workq-enqueue --quiet q </dev/null
    assert_success
    assert_equal "$output$stderr" ""
    assert_equal "$(job_count q)" 2
    # Errors still show.
    run --separate-stderr workq-enqueue -q --priority x q a
    assert_equal "$status" 2
    [ -n "$stderr" ] || fail "the error is not shown"
}

@test "a bad queue name is exit 2 before any command is sent" {
    start_redis "$OWN"
    local before after name long
    long=$(printf 'q%.0s' $(seq 129))
    before=$(redis_info_field "$OWN/redis.sock" total_connections_received)
    for name in '' 'a b' -q .q _q 'x:y' '{q}' 'q/1' "$long" 'é' $'q\n'; do
        run --separate-stderr workq-enqueue --redis "unix://$OWN/redis.sock" -- "$name" x
        assert_equal "$status" 2
        assert_equal "$output" ""
        [[ "$stderr" == *queue* ]] || fail "'$name': $stderr"
    done
    after=$(redis_info_field "$OWN/redis.sock" total_connections_received)
    # The only new connection is the INFO that reads the count.
    assert_equal "$after" $((before + 1))
    # 128 characters is fine.
    run --separate-stderr workq-enqueue --redis "unix://$OWN/redis.sock" "${long:1}" x
    assert_success
}

@test "one enqueue is one connection and one script call" {
    start_redis "$OWN"
    workq-enqueue --redis "unix://$OWN/redis.sock" q warm-up >/dev/null # loads the scripts
    redis-cli -s "$OWN/redis.sock" config resetstat >/dev/null
    run --separate-stderr workq-enqueue --redis "unix://$OWN/redis.sock" q x
    assert_success
    local connections fcall evalsha
    connections=$(redis_info_field "$OWN/redis.sock" total_connections_received)
    fcall=$(redis_info_field "$OWN/redis.sock" cmdstat_fcall | sed -n 's/^calls=\([0-9]*\),.*/\1/p')
    evalsha=$(redis_info_field "$OWN/redis.sock" cmdstat_evalsha | sed -n 's/^calls=\([0-9]*\),.*/\1/p')
    assert_equal "$connections" 2 # the tool's and this INFO's
    # FCALL of the scripts' library (Redis >= 7), else EVALSHA: one call either way.
    assert_equal "$((${fcall:-0} + ${evalsha:-0}))" 1
}

@test "a slow producer's jobs are enqueued as they come, not when input ends" {
    mkfifo "$BATS_TEST_TMPDIR/in"
    workq-enqueue q <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
    local pid=$!
    exec 8>"$BATS_TEST_TMPDIR/in"
    echo first >&8
    # The first id appears (and its job exists) while the producer is still running.
    wait_until 10 test -s "$BATS_TEST_TMPDIR/out" || { exec 8>&-; fail "no id before the end of input"; }
    assert_equal "$(job_field q "$(head -1 "$BATS_TEST_TMPDIR/out")" payload)" first
    echo second >&8
    wait_until 10 has_lines "$BATS_TEST_TMPDIR/out" 2 || { exec 8>&-; fail "no second id"; }
    exec 8>&-
    wait "$pid"
    assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/out")" 2
}

@test "Redis lost mid-stream: exit 3, stderr says how many lines were read and how many enqueued, every printed id is enqueued" {
    start_redis "$OWN" --appendonly yes --appendfsync always
    local pid
    pid=$(cat "$OWN/redis.pid")
    # A slow producer: batches of lines with pauses, far more than will be read; a blank line
    # after each job, so that lines and jobs differ (job k is on line 2k-1).
    (
        for ((i = 1; i <= 200000; i++)); do
            printf 'line %s\n\n' "$i"
            ((i % 100 == 0)) && sleep 0.01
        done
    ) | {
        rc=0
        workq-enqueue --redis "unix://$OWN/redis.sock" q >"$BATS_TEST_TMPDIR/out" \
            2>"$BATS_TEST_TMPDIR/err" || rc=$?
        echo "$rc" >"$BATS_TEST_TMPDIR/rc"
    } &
    wait_until 20 has_lines "$BATS_TEST_TMPDIR/out" 500
    kill -9 "$pid"
    wait_until 20 test -s "$BATS_TEST_TMPDIR/rc"
    wait

    assert_equal "$(cat "$BATS_TEST_TMPDIR/rc")" 3
    local err printed read enqueued
    err=$(cat "$BATS_TEST_TMPDIR/err")
    printed=$(wc -l <"$BATS_TEST_TMPDIR/out")
    [[ "$err" =~ read\ ([0-9]+)\ job\(s\)\ from\ ([0-9]+)\ line\(s\)\ of\ stdin,\ enqueued\ ([0-9]+) ]] ||
        fail "no counts: $err"
    read=${BASH_REMATCH[1]}
    enqueued=${BASH_REMATCH[3]}
    assert_equal "${BASH_REMATCH[2]}" $((2 * read - 1))
    assert_equal "$enqueued" "$printed"
    [ "$read" -ge "$enqueued" ] || fail "read $read < enqueued $enqueued"
    [ "$read" -lt 200000 ] || fail "read everything: the loss was not noticed"

    # The server comes back from its append-only file: the k-th id holds the k-th line.
    rm -f "$OWN/redis.sock"
    start_redis "$OWN" --appendonly yes
    sed "s/.*/HGET {$WORKQ_NAMESPACE:q}:job:& payload/" "$BATS_TEST_TMPDIR/out" |
        redis-cli -s "$OWN/redis.sock" >"$BATS_TEST_TMPDIR/payloads"
    seq "$printed" | sed 's/^/line /' >"$BATS_TEST_TMPDIR/expected"
    cmp "$BATS_TEST_TMPDIR/payloads" "$BATS_TEST_TMPDIR/expected" ||
        fail "printed ids that are not enqueued: $(diff "$BATS_TEST_TMPDIR/payloads" "$BATS_TEST_TMPDIR/expected" | head -5)"
}

# Peak memory for a million lines. ASan's quarantine keeps up to 256 MiB of freed memory for
# use-after-free checks; it would be measured instead of workq, so it is turned off here. With
# it off, the ASan build peaks at about 38 MiB for one job and for a million alike (a plain
# build needs far less): the ceiling, 80 MiB, is about twice that. A tool that kept every id or
# payload of a million would need several tens of MiB more and fail.
@test "1,000,000 lines enqueue in bounded memory" {
    start_redis "$OWN"
    seq 1000000 | ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}:quarantine_size_mb=0" \
        /usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" \
        workq-enqueue --redis "unix://$OWN/redis.sock" q >"$BATS_TEST_TMPDIR/ids"
    assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/ids")" 1000000
    assert_equal "$(redis-cli -s "$OWN/redis.sock" llen "{$WORKQ_NAMESPACE:q}:waiting:0")" 1000000
    local rss_kib
    rss_kib=$(tail -1 "$BATS_TEST_TMPDIR/rss")
    echo "# peak RSS ${rss_kib} KiB" >&3
    [ "$rss_kib" -lt 81920 ] || fail "peak RSS ${rss_kib} KiB, over the 80 MiB ceiling"
}

@test "at a terminal, stderr says when nothing was made (exists: ID) and when a queue is new; in scripts it says nothing" {
    local first
    first=$(workq-enqueue --unique nightly q backup)
    run at_terminal workq-enqueue --unique nightly q backup
    assert_success
    assert_line "$first"
    assert_output --partial "exists: $first"
    run at_terminal workq-enqueue --id invoice-42 billing 42
    assert_output --partial "new queue billing"
    refute_output --partial "exists:"
    run at_terminal workq-enqueue --id invoice-42 billing 42
    assert_line invoice-42
    assert_output --partial "exists: invoice-42"
    refute_output --partial "new queue"
    # A typo makes a queue: said once, naming how to remove it.
    run at_terminal workq-enqueue qq x
    assert_output --partial "new queue qq (a typo? workq-queue rm qq removes it)"
    # Not a terminal: the id alone, nothing on stderr.
    run --separate-stderr workq-enqueue --unique nightly q backup
    assert_output "$first"
    assert_equal "$stderr" ""
    run --separate-stderr workq-enqueue fresh x
    assert_equal "$stderr" ""
}

@test "--delay 10 minutes: a unit where the queue goes is a usage error naming the fix, nothing enqueued" {
    run --separate-stderr workq-enqueue --delay 10 minutes mail x
    assert_failure 2
    [[ "$stderr" == *"--delay 10 minutes: write the duration as one word (--delay 10m)"* ]] || fail "$stderr"
    run --separate-stderr workq-enqueue --timeout 1.5 h q x
    assert_failure 2
    [[ "$stderr" == *"(--timeout 1.5h)"* ]] || fail "$stderr"
    assert_equal "$(rcli scard "{$WORKQ_NAMESPACE}:queues")" 0
    # A queue may still be called "m" when the duration is one word.
    run --separate-stderr workq-enqueue --delay 10m m x
    assert_success
}
