#!/usr/bin/env bats
# The workq front door and the options every tool shares.

load helpers

setup() { workq_test_setup; }
teardown() { workq_test_teardown; }

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
