#!/usr/bin/env bats
# The workq front door and the options every tool shares.

load helpers

setup() { workq_test_setup; }
# The closed-stdio test runs a server of its own; stopped here whatever the test did.
teardown() {
    stop_redis "$BATS_TEST_TMPDIR/own"
    workq_test_teardown
}

@test "every tool answers --help on stdout and exits 0" {
    for tool in workq workq-enqueue workq-work workq-queue workq-dlq workq-status; do
        run --separate-stderr "$tool" --help
        assert_success
        [ -n "$output" ] || fail "$tool --help printed nothing on stdout"
    done
}

@test "every tool prints its version" {
    for tool in workq workq-enqueue workq-work workq-queue workq-dlq workq-status; do
        run --separate-stderr "$tool" --version
        assert_success
        assert_output --regexp '^workq [0-9]+\.[0-9]+\.[0-9]+$'
    done
}

@test "workq SUB execs workq-SUB in place: same pid, same exit code" {
    run --separate-stderr workq enqueue --version
    assert_success
    assert_output --regexp '^workq [0-9]'
    # exec keeps the pid: a shell that execs workq reports its own pid as the tool's parent
    run --separate-stderr workq enqueue 'bad name' x
    assert_equal "$status" 2
}

@test "workq with an unknown command is a usage error naming it" {
    run --separate-stderr workq frobnicate
    assert_equal "$status" 2
    assert_equal "$output" ""
    [[ "$stderr" == *"frobnicate"* ]] || fail "stderr does not name the command: $stderr"
}

@test "the options every tool has work after a subcommand too" {
    local id other="${WORKQ_NAMESPACE}o"
    id=$(workq-enqueue --namespace "$other" q x)
    run --separate-stderr workq-queue ls q --namespace "$other"
    assert_success
    assert_output --partial "$id"
    run --separate-stderr workq-dlq count q --namespace "$other" -q
    assert_success
    assert_equal "$output" 0
    run --separate-stderr workq-queue pause q --log-level error --namespace "$other"
    assert_success
    assert_equal "$stderr" ""
    run --separate-stderr workq-status job "$id" --namespace "$other" --redis "$WORKQ_REDIS_URL"
    assert_success
    assert_output --regexp "^$id +waiting"
    # --json before `job` means the same as after it.
    run --separate-stderr workq-status --namespace "$other" --json job "$id"
    assert_success
    assert_equal "$(jq -r .state <<<"$output")" waiting
    # Still refused: what no level knows.
    run --separate-stderr workq-queue ls q --no-such-flag
    assert_failure 2
}

@test "an empty value where one is required is exit 2, not ignored" {
    local flag
    for flag in --redis --namespace --config --password-file --log-level --log-format; do
        run --separate-stderr workq-enqueue "$flag" '' q x
        assert_equal "$status" 2
        assert_equal "$output" ""
        [[ "$stderr" == *"$flag"*"empty"* ]] || fail "$flag '': $stderr"
    done
    # --id "$ID" with $ID empty by mistake must not make a new job on every run.
    for flag in --id --unique; do
        run --separate-stderr workq-enqueue "$flag" '' q x
        assert_equal "$status" 2
        [[ "$stderr" == *"$flag"*"empty"* ]] || fail "$flag '': $stderr"
    done
    assert_equal "$(job_count q)" 0
}

# command_errors: how many ERR replies (unknown command, wrong arguments) the test's server gave.
command_errors() {
    rcli info errorstats | tr -d '\r' | sed -n 's/^errorstat_ERR:count=//p' | grep . || echo 0
}

@test "started with stdout or stdin closed: exit 1 naming it; the Redis connection never takes their place" {
    # A server of its own: the error counter is server-wide, and tests run side by side. Only
    # errors a command would get count (ERR: an id sent as a command is "unknown command"); a
    # first use of a script meets NOSCRIPT on a fresh server, which says nothing here.
    mkdir -p "$BATS_TEST_TMPDIR/own"
    start_redis "$BATS_TEST_TMPDIR/own"
    export WORKQ_REDIS_URL="unix://$BATS_TEST_TMPDIR/own/redis.sock"
    export WORKQ_TEST_REDIS_SOCKET="$BATS_TEST_TMPDIR/own/redis.sock"
    local before
    before=$(command_errors)
    run --separate-stderr bash -c 'workq-enqueue q closed-out >&-'
    assert_equal "$status" 1
    [[ "$stderr" == *"cannot write to stdout"*"nothing was enqueued"* ]] || fail "$stderr"
    # Refused before anything was made: no job whose id nobody has.
    assert_equal "$(job_count q)" 0
    run --separate-stderr bash -c 'workq-enqueue q <&-'
    assert_equal "$status" 1
    [[ "$stderr" == *"cannot read stdin"* ]] || fail "$stderr"
    # No id went to the server as a command.
    assert_equal "$(command_errors)" "$before"
    # Stderr closed: the tool still works; its ids still on stdout.
    run bash -c 'workq-enqueue q closed-err 2>&-'
    assert_success
    assert_equal "$(job_field q "$output" payload)" closed-err
}

# ---- issue 24 item 6: messages that name what was wrong and what would be right -----------------

@test "an unknown subcommand is named, with the one probably meant and the list" {
    run --separate-stderr workq-queue list mail
    assert_failure 2
    assert_equal "$output" ""
    [[ "$stderr" == *"unknown subcommand 'list' (did you mean ls?)"*"ls, cancel, purge"* ]] || fail "$stderr"
    run --separate-stderr workq-dlq reqeue mail --all
    assert_failure 2
    [[ "$stderr" == *"unknown subcommand 'reqeue' (did you mean requeue?)"* ]] || fail "$stderr"
    run --separate-stderr workq-dlq
    assert_failure 2
    [[ "$stderr" == *"a subcommand is required: ls, show, requeue"* ]] || fail "$stderr"
}

@test "workq: an option before the command is named as an option; workq help COMMAND is COMMAND's help" {
    run --separate-stderr workq --ver
    assert_failure 2
    [[ "$stderr" == *"unknown option '--ver'"*"--version"* ]] || fail "$stderr"
    [[ "$stderr" != *"workq---ver"* ]] || fail "$stderr"
    run --separate-stderr workq help enqueue
    assert_success
    assert_equal "$output" "$(workq-enqueue --help)"
    run --separate-stderr workq help frobnicate
    assert_failure 2
    [[ "$stderr" == *"unknown command 'frobnicate'"* ]] || fail "$stderr"
}

@test "--help shows a word for each value, as the man pages do, not CLI11's type tags" {
    local tool sub text
    for tool in enqueue work queue dlq status; do
        for sub in "" $(workq-$tool --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF {print $1}'); do
            text=$(workq-$tool $sub --help)
            # Option lines ("  --lease DURATION ...") and positional ones ("  QUEUE ...").
            if grep -E '^  (-[-a-zA-Z0-9,]+ |[A-Z]+ )' <<<"$text" | grep -v '^  SIG' |
                grep -E '\<(INT|UINT|FLOAT|TEXT)\>|:[A-Z]|Excludes:|Needs:|REQUIRED|\{'; then
                fail "workq-$tool $sub --help shows type tags"
            fi
        done
    done
    run workq-enqueue --help
    assert_line --regexp '^  --delay DURATION +Run no earlier'
    assert_line --regexp '^  --priority N +Higher runs first'
    run workq-status --help
    assert_line --regexp '^  --watch \[=INTERVAL\] +Refresh'
    assert_line --regexp '^  --json +One JSON document'
}

@test "workq-dlq requeue with a job id where the queue goes says how the command reads" {
    local id
    id=$(workq-enqueue mail x)
    run --separate-stderr workq-dlq requeue "$id"
    assert_failure 2
    [[ "$stderr" == *"'$id' is a job, not a queue"*"workq-dlq requeue mail $id"* ]] || fail "$stderr"
    run --separate-stderr workq-dlq rm "$id" --all
    assert_failure 2
    [[ "$stderr" == *"workq-dlq rm mail $id"* ]] || fail "$stderr"
    run --separate-stderr workq-dlq requeue mail
    assert_failure 2
    [[ "$stderr" == *"name the dead letters of mail: workq-dlq requeue mail ID..."* ]] || fail "$stderr"
    # A queue that is also some job's id stays a queue.
    workq-enqueue "$id" y >/dev/null
    run --separate-stderr workq-dlq requeue "$id" --all
    assert_success
}

@test "workq-status job - reads the ids from stdin, as the README says" {
    local a b
    a=$(workq-enqueue q one)
    b=$(workq-enqueue q two)
    run --separate-stderr workq-status job - <<<"$a
$b"
    assert_success
    assert_line --index 0 --regexp "^$a +waiting"
    assert_line --index 1 --regexp "^$b +waiting"
}
