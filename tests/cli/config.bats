#!/usr/bin/env bats
# The configuration file (CONTRACT.md §2, issue 2): which files are read, how a tool's table
# applies, what beats what, and what a user sees when a file is wrong.
# /etc/workq/config.toml is not tested here: it is global to the machine, and other test runs
# share it. The per-user file, $XDG_CONFIG_HOME/workq/config.toml, is layered the same way.

load helpers

setup() {
    workq_test_setup
    mkdir -p "$XDG_CONFIG_HOME/workq"
    USER_CONFIG="$XDG_CONFIG_HOME/workq/config.toml"
}

teardown() { workq_test_teardown; }

@test "a key of the tool's table applies; the command line beats it" {
    printf '# mine\n[enqueue]\nmax-attempts = 3\npriority = 7\n' >"$USER_CONFIG"
    run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$stderr" ""
    assert_equal "$(job_field q "$output" max)" 3
    assert_equal "$(job_field q "$output" prio)" 7

    run --separate-stderr workq-enqueue --max-attempts 5 q x
    assert_success
    assert_equal "$(job_field q "$output" max)" 5
    assert_equal "$(job_field q "$output" prio)" 7
}

@test "durations and flags in the tool's table: delay = \"1h\", whole = true" {
    printf '[enqueue]\ndelay = "1h"\nwhole = true\n' >"$USER_CONFIG"
    run --separate-stderr workq-enqueue q <<<$'two\nlines'
    assert_success
    assert_equal "${#lines[@]}" 1
    assert_equal "$(job_field q "$output" state)" scheduled
    assert_equal "$(job_field q "$output" payload)" $'two\nlines'
    # A flag set to false in the file is off.
    printf '[enqueue]\nwhole = false\n' >"$USER_CONFIG"
    run --separate-stderr workq-enqueue q <<<$'two\nlines'
    assert_success
    assert_equal "${#lines[@]}" 2
}

@test "a list as a TOML array: permanent-exit-codes = [100, 101] is the flag's \"100,101\"" {
    printf '[work]\npermanent-exit-codes = [100, 101]\nbackoff = ["1h", "2h"]\n' >"$USER_CONFIG"
    workq-enqueue q a b >"$D/ids"
    # --max-runtime: the burst would wait an hour for b's retry.
    run --separate-stderr workq-work --burst --max-runtime 1s q -- sh -c 'case "$(cat)" in a) exit 101;; *) exit 7;; esac'
    assert_failure 1
    local a b
    { read -r a; read -r b; } <"$D/ids"
    # 101 is permanent: dead after one attempt; 7 is not: its retry is scheduled an hour ahead.
    assert_equal "$(job_field q "$a" attempts)" 1
    assert_equal "$(job_field q "$a" state)" dead
    assert_equal "$(job_field q "$b" state)" scheduled
    # An array where one value is meant is refused, naming the key.
    printf '[work]\ntimeout = ["1s", "2s"]\n' >"$USER_CONFIG"
    run --separate-stderr workq-work --burst q -- true
    assert_failure 2
    [[ "$stderr" == *"timeout"* ]] || fail "$stderr"
}

@test "without XDG_CONFIG_HOME the file is ~/.config/workq/config.toml" {
    export HOME="$BATS_TEST_TMPDIR/home"
    unset XDG_CONFIG_HOME
    mkdir -p "$HOME/.config/workq"
    printf '[enqueue]\nmax-attempts = 4\n' >"$HOME/.config/workq/config.toml"
    run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$(job_field q "$output" max)" 4
}

@test "--config and WORKQ_CONFIG name the only file read; --config beats WORKQ_CONFIG" {
    printf '[enqueue]\nmax-attempts = 3\n' >"$USER_CONFIG"
    printf '[enqueue]\npriority = 4\n' >"$BATS_TEST_TMPDIR/a.toml"
    printf '[enqueue]\npriority = 5\n' >"$BATS_TEST_TMPDIR/b.toml"

    run --separate-stderr workq-enqueue --config "$BATS_TEST_TMPDIR/a.toml" q x
    assert_success
    assert_equal "$(job_field q "$output" prio)" 4
    assert_equal "$(job_field q "$output" max)" 10 # the per-user file was not read

    WORKQ_CONFIG="$BATS_TEST_TMPDIR/a.toml" run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$(job_field q "$output" prio)" 4
    assert_equal "$(job_field q "$output" max)" 10

    WORKQ_CONFIG="$BATS_TEST_TMPDIR/a.toml" run --separate-stderr \
        workq-enqueue --config "$BATS_TEST_TMPDIR/b.toml" q x
    assert_success
    assert_equal "$(job_field q "$output" prio)" 5
}

@test "an unknown key is a warning naming it, and the tool still works" {
    printf 'colour = "blue"\n[enqueue]\nmax-attempts = 2\nmax-atempts = 3\n[redis]\nhost = "x"\n[enqeue]\na = 1\n' \
        >"$USER_CONFIG"
    run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$(job_field q "$output" max)" 2
    [[ "$stderr" == *"'max-atempts'"*"$USER_CONFIG:4"* || "$stderr" == *"$USER_CONFIG:4"*"'max-atempts'"* ]] ||
        fail "the unknown key is not named with file and line: $stderr"
    [[ "$stderr" == *"'colour'"* ]] || fail "top-level key not named: $stderr"
    [[ "$stderr" == *"'host'"* ]] || fail "[redis] key not named: $stderr"
    [[ "$stderr" == *"enqeue"* ]] || fail "unknown table not named: $stderr"
    # The table's own line (7), not the line of its first key after it.
    [[ "$stderr" == *"unknown table [enqeue] in $USER_CONFIG:7"* ]] || fail "not the table's line: $stderr"
    while IFS= read -r line; do
        [[ "$line" == "workq-enqueue: warning: "* ]] || fail "not a warning line: $line"
    done <<<"$stderr"

    # -q: errors only.
    run --separate-stderr workq-enqueue -q q x
    assert_success
    assert_equal "$stderr" ""
}

@test "a malformed file is exit 2 naming the file and the line; nothing is sent" {
    printf '[enqueue]\nmax-attempts = 3\npriority = = 4\n' >"$USER_CONFIG"
    run --separate-stderr workq-enqueue q x
    assert_equal "$status" 2
    assert_equal "$output" ""
    [[ "$stderr" == *"$USER_CONFIG"* ]] || fail "the file is not named: $stderr"
    [[ "$stderr" =~ (line\ 3|:3[^0-9]) ]] || fail "the line is not named: $stderr"

    printf 'namespace = "x"\n[enqueue\n' >"$BATS_TEST_TMPDIR/bad.toml"
    WORKQ_CONFIG="$BATS_TEST_TMPDIR/bad.toml" run --separate-stderr workq-enqueue q x
    assert_equal "$status" 2
    [[ "$stderr" == *"$BATS_TEST_TMPDIR/bad.toml"* ]] || fail "the file is not named: $stderr"
    [[ "$stderr" =~ (line\ 2|:2[^0-9]) ]] || fail "the line is not named: $stderr"
    assert_equal "$(job_count q)" 0
}

@test "a value the option refuses is exit 2 naming file:line and the key" {
    local body
    for body in 'delay = "5x"' 'timeout = "soon"' 'at = "tomorrow"' 'max-attempts = 0' \
        'priority = 2000000' 'priority = 1.5' 'max-attempts = "many"' 'whole = "yes"' \
        'max-payload = "huge"' 'delay = { seconds = 5 }'; do
        printf '# line 1\n[enqueue]\n%s\n' "$body" >"$USER_CONFIG"
        run --separate-stderr workq-enqueue q x
        assert_equal "$status" 2
        [[ "$stderr" == *"$USER_CONFIG:3"* ]] || fail "$body: file:line not named: $stderr"
        [[ "$stderr" == *"${body%% *}"* ]] || fail "$body: the key is not named: $stderr"
    done
    assert_equal "$(job_count q)" 0
}

@test "a missing --config or WORKQ_CONFIG file is exit 2 naming it; a missing default is fine" {
    run --separate-stderr workq-enqueue --config "$BATS_TEST_TMPDIR/nope.toml" q x
    assert_equal "$status" 2
    [[ "$stderr" == *"$BATS_TEST_TMPDIR/nope.toml"* ]] || fail "$stderr"
    WORKQ_CONFIG="$BATS_TEST_TMPDIR/nope.toml" run --separate-stderr workq-enqueue q x
    assert_equal "$status" 2
    [[ "$stderr" == *"$BATS_TEST_TMPDIR/nope.toml"* ]] || fail "$stderr"
    assert_equal "$(job_count q)" 0

    rm -f "$USER_CONFIG"
    run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$stderr" ""
}

@test "a config path that is a directory is exit 2 naming it" {
    run --separate-stderr workq-enqueue --config "$BATS_TEST_TMPDIR" q x
    assert_equal "$status" 2
    [[ "$stderr" == *"$BATS_TEST_TMPDIR"* ]] || fail "$stderr"
}

@test "namespace: the top-level key, the tool's table; WORKQ_NAMESPACE and --namespace beat it" {
    local ns="cfg${RANDOM}${RANDOM}"
    printf 'namespace = "%s"\n' "$ns" >"$USER_CONFIG"
    unset WORKQ_NAMESPACE
    run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$(rcli exists "{$ns:q}:job:$output")" 1

    printf 'namespace = "%s"\n[enqueue]\nnamespace = "%s-e"\n' "$ns" "$ns" >"$USER_CONFIG"
    run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$(rcli exists "{$ns-e:q}:job:$output")" 1

    WORKQ_NAMESPACE="$ns-env" run --separate-stderr workq-enqueue q x
    assert_success
    assert_equal "$(rcli exists "{$ns-env:q}:job:$output")" 1

    WORKQ_NAMESPACE="$ns-env" run --separate-stderr workq-enqueue --namespace "$ns-flag" q x
    assert_success
    assert_equal "$(rcli exists "{$ns-flag:q}:job:$output")" 1

    # A namespace that could not be a key prefix is a usage error naming it.
    printf 'namespace = "a:b"\n' >"$USER_CONFIG"
    run --separate-stderr workq-enqueue q x
    assert_equal "$status" 2
    [[ "$stderr" == *"'a:b'"* ]] || fail "$stderr"
    local key
    for key in "$ns" "$ns-e" "$ns-env" "$ns-flag"; do
        rcli --scan --pattern "{$key*" | xargs -r redis-cli -s "$WORKQ_TEST_REDIS_SOCKET" del >/dev/null
    done
}
