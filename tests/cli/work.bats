#!/usr/bin/env bats
# workq-work (CONTRACT.md §4, issue 5), jobs and handlers: exactly-once in --burst with -c 4,
# outcomes (retries with backoff, dead letters, permanent exit codes), timeouts killing whole
# process groups, the handler's environment, fds and signals, misbehaving handlers, corrupted
# records, modes, queue priority and bad flags. Signals, leases, hooks and Redis trouble are in
# work_signals.bats.

load work_helpers

# One cluster for the file when WORKQ_TEST_TOPOLOGY=cluster (helpers.bash).
setup_file() { workq_test_setup_file; }
teardown_file() { workq_test_teardown_file; }

setup() { work_setup; }
teardown() { work_teardown; }

# ---- exactly once ----------------------------------------------------------------------------

# bats test_tags=cluster
@test "--burst -c 4: every job of a batch runs exactly once (append-only ledger), at most 4 at a time" {
    seq 40 | workq-enqueue q >"$D/ids"
    mkdir "$D/running"
    local h
    h=$(make_handler h <<'EOF'
payload=$(cat)
: >"$D/running/$WORKQ_JOB_ID"
ls "$D/running" | wc -l >>"$D/concurrent"
echo "$WORKQ_JOB_ID $payload $WORKQ_ATTEMPT" >>"$D/ledger"
sleep 0.1
rm "$D/running/$WORKQ_JOB_ID"
printf 'done %s' "$payload"
EOF
)
    export D
    start_worker w --burst -c 4 q -- "$h"
    wait_exit "$LAST_PID" 60
    assert_equal "$EXIT_CODE" 0
    assert_no_stdout w
    # One line per run: 40 runs, 40 distinct jobs, every payload once, each on its first attempt.
    assert_equal "$(wc -l <"$D/ledger")" 40
    assert_equal "$(cut -d' ' -f1 "$D/ledger" | sort -u | wc -l)" 40
    assert_equal "$(cut -d' ' -f2 "$D/ledger" | sort -n | tr '\n' ' ')" "$(seq 40 | tr '\n' ' ')"
    assert_equal "$(cut -d' ' -f3 "$D/ledger" | sort -u)" 1
    assert_equal "$(cut -d' ' -f1 "$D/ledger" | sort)" "$(sort "$D/ids")"
    local id
    while read -r id; do
        assert_raw_state q "$id" succeeded
    done <"$D/ids"
    assert_equal "$(job_field q "$(head -1 "$D/ids")" result)" "done 1"
    assert_equal "$(meta_field q succeeded)" 40
    # -c 4 is used, and never exceeded.
    local most
    most=$(sort -n "$D/concurrent" | tail -1)
    [ "$most" -le 4 ] || fail "$most handlers ran at once with -c 4"
    [ "$most" -ge 2 ] || fail "never more than one handler at once with -c 4"
}

# bats test_tags=cluster
@test "two --burst workers -c 4 on one batch: still exactly once" {
    seq 60 | workq-enqueue q >"$D/ids"
    local h
    h=$(make_handler h <<'EOF'
echo "$WORKQ_JOB_ID $(cat) $WORKQ_WORKER_ID" >>"$D/ledger"
EOF
)
    export D
    start_worker a --burst -c 4 q -- "$h"
    local a=$LAST_PID
    start_worker b --burst -c 4 q -- "$h"
    local b=$LAST_PID
    wait_exit "$a" 60
    assert_equal "$EXIT_CODE" 0
    wait_exit "$b" 60
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(wc -l <"$D/ledger")" 60
    assert_equal "$(cut -d' ' -f1 "$D/ledger" | sort -u | wc -l)" 60
    assert_equal "$(cut -d' ' -f2 "$D/ledger" | sort -n | tr '\n' ' ')" "$(seq 60 | tr '\n' ' ')"
    assert_equal "$(meta_field q succeeded)" 60
}

# ---- outcomes --------------------------------------------------------------------------------

@test "a failing job is retried after --backoff (scheduled meanwhile), then dead after max attempts with every error kept" {
    id=$(workq-enqueue --max-attempts 3 q payload)
    local h
    h=$(make_handler h <<'EOF'
echo "$WORKQ_ATTEMPT/$WORKQ_MAX_ATTEMPTS $(date +%s%3N)" >>"$D/ledger"
echo "boom on attempt $WORKQ_ATTEMPT" >&2
exit 3
EOF
)
    export D
    start_worker w --backoff 300ms,400ms q -- "$h"
    # Between runs the job waits as `scheduled`.
    wait_until 10 has_lines "$D/ledger" 1
    wait_until 5 state_is q "$id" scheduled
    wait_until 15 state_is q "$id" dead
    assert_equal "$(job_field q "$id" attempts)" 3
    assert_equal "$(cut -d' ' -f1 "$D/ledger" | tr '\n' ' ')" "1/3 2/3 3/3 "
    # Backoff: about 300ms, then about 600ms capped at 400ms (jitter 0.8-1.2, then the cap).
    local t1 t2 t3
    read -r t1 t2 t3 <<<"$(cut -d' ' -f2 "$D/ledger" | tr '\n' ' ')"
    [ $((t2 - t1)) -ge 230 ] || fail "second run $((t2 - t1))ms after the first (backoff 300ms)"
    [ $((t3 - t2)) -ge 310 ] || fail "third run $((t3 - t2))ms after the second (backoff 400ms)"
    run errors_of q "$id"
    assert_equal "${#lines[@]}" 3
    assert_line --index 0 --partial '"reason":"exit 3"'
    assert_line --index 0 --partial 'boom on attempt 1'
    assert_line --index 2 --partial 'boom on attempt 3'
    assert_equal "$(job_field q "$id" reason)" "exit 3"
    assert_equal "$(rcli zscore "{$WORKQ_NAMESPACE:q}:dead" "$id" | grep -c .)" 1
    assert_log w "job failed; will retry"
    assert_log w "job dead"
    assert_log w "[$id] boom on attempt 2"
    assert_no_stdout w
}

# bats test_tags=cluster
@test "exit 100 is dead at once (1 attempt); --burst then exits 1" {
    id=$(workq-enqueue q payload)
    start_worker w --burst q -- sh -c 'echo "ran $WORKQ_ATTEMPT" >>"$0"; exit 100' "$D/ledger"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 1
    assert_raw_state q "$id" dead
    assert_equal "$(job_field q "$id" attempts)" 1
    assert_equal "$(cat "$D/ledger")" "ran 1"
    assert_equal "$(error_count q "$id")" 1
    assert_equal "$(job_field q "$id" reason)" "exit 100"
}

@test "--permanent-exit-codes replaces the set: 7 is dead at once, 100 is retried" {
    seven=$(workq-enqueue q 7)
    hundred=$(workq-enqueue --max-attempts 2 q 100)
    start_worker w --backoff 100ms,100ms --permanent-exit-codes 7,9 q -- sh -c 'exit "$(cat)"'
    wait_until 15 state_is q "$hundred" dead
    wait_until 5 state_is q "$seven" dead
    assert_equal "$(job_field q "$seven" attempts)" 1
    assert_equal "$(job_field q "$hundred" attempts)" 2
}

@test "--timeout: SIGTERM to the handler's whole process group, grandchildren included" {
    id=$(workq-enqueue --max-attempts 1 q x)
    local h
    h=$(make_handler h <<'EOF'
echo $$ >"$D/handler.pid"
sleep 1000 &
echo $! >"$D/grandchild.pid"
sleep 1001
EOF
)
    export D
    start_worker w --timeout 500ms --kill-grace 5s q -- "$h"
    wait_until 10 test -s "$D/grandchild.pid"
    local pgid gc
    pgid=$(cat "$D/handler.pid")
    gc=$(cat "$D/grandchild.pid")
    assert_equal "$(ps -o pgid= -p "$gc" | tr -d ' ')" "$pgid"
    wait_until 10 state_is q "$id" dead
    wait_until 5 group_gone "$pgid"
    process_gone "$gc" || fail "grandchild $gc survived the timeout"
    assert_equal "$(job_field q "$id" reason)" "timeout after 500ms (signal SIGTERM)"
    assert_log w "timeout"
}

@test "--timeout: what the handler started outside its process group (timeout, setsid) dies too (issue 23)" {
    id=$(workq-enqueue --max-attempts 1 q x)
    local h
    h=$(escaping_handler)
    export D
    start_worker w --timeout 1s --kill-grace 500ms q -- "$h"
    wait_until 10 has_lines "$D/escaped.pid" 3
    local handler pid
    handler=$(cat "$D/handler.pid")
    # (The third, orphaned at once, may be gone already: the worker kills orphans it inherits.)
    for pid in $(head -2 "$D/escaped.pid"); do
        wait_until 5 outside_group "$pid" "$handler" || fail "$pid did not leave the group"
    done
    wait_until 10 state_is q "$id" dead
    wait_until 5 escaped_all_gone
    assert_log w "outside its process group"
    alive "$LAST_PID"
}

@test "a process orphaned outside its handler's group is killed while the worker runs, the handler unharmed" {
    id=$(workq-enqueue q x)
    local h
    h=$(make_handler h <<'EOF'
(env -i setsid sleep 1005 & echo $! >"$D/orphan.pid")
while [ ! -e "$D/go" ]; do sleep 0.05; done
echo done
EOF
)
    export D
    start_worker w q -- "$h"
    wait_until 10 test -s "$D/orphan.pid"
    # Inherited by the worker (its subreaper) and killed at its next look (a heartbeat: 5 s).
    wait_until 15 process_gone "$(cat "$D/orphan.pid")"
    assert_raw_state q "$id" running
    touch "$D/go"
    wait_until 10 state_is q "$id" succeeded
    assert_log w "killed 1 process that a handler or hook left running outside its process group"
}

@test "--kill-grace: a handler that ignores SIGTERM gets SIGKILL after the grace" {
    id=$(workq-enqueue --max-attempts 1 q x)
    local h
    h=$(make_handler h <<'EOF'
trap '' TERM
echo $$ >"$D/handler.pid"
sleep 1000 &
echo $! >>"$D/handler.pid"
while :; do sleep 1; done
EOF
)
    export D
    start_worker w --timeout 300ms --kill-grace 1200ms q -- "$h"
    wait_until 10 has_lines "$D/handler.pid" 2
    wait_until 10 state_is q "$id" dead
    assert_equal "$(job_field q "$id" reason)" "timeout after 300ms (signal SIGKILL)"
    # Killed no sooner than timeout + grace.
    local started finished
    started=$(job_field q "$id" started)
    finished=$(job_field q "$id" finished)
    [ $((finished - started)) -ge 1400 ] || fail "killed after $((finished - started))ms"
    wait_until 5 group_gone "$(head -1 "$D/handler.pid")"
}

@test "a per-job --timeout overrides the worker's (--timeout 0: none)" {
    id=$(workq-enqueue --timeout 300ms --max-attempts 1 q x)
    start_worker w --timeout 0 q -- sleep 1000
    wait_until 10 state_is q "$id" dead
    assert_equal "$(job_field q "$id" reason)" "timeout after 300ms (signal SIGTERM)"
}

@test "a handler that exits by a signal fails with the signal named; its stderr tail is the error" {
    id=$(workq-enqueue --max-attempts 1 q x)
    start_worker w --burst q -- sh -c 'echo "about to crash" >&2; kill -SEGV $$'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 1
    assert_raw_state q "$id" dead
    assert_equal "$(job_field q "$id" reason)" "signal SIGSEGV"
    assert_equal "$(job_field q "$id" error)" "about to crash"
}

# ---- the handler's world ---------------------------------------------------------------------

@test "handler environment: no password or URL, the WORKQ_* job variables; only fds 0-2; default signals; the worker's cwd" {
    local own="$BATS_TEST_TMPDIR/own"
    mkdir -p "$own"
    start_redis "$own" --requirepass s3cret-pw
    export WORKQ_REDIS_URL="unix://$own/redis.sock"
    export WORKQ_REDIS_PASSWORD=s3cret-pw
    id=$(workq-enqueue --max-attempts 4 q x)
    # The handler is perl, which inspects itself as exec left it (a shell would change its own
    # mask while it waits for a child): signal state first, then fds, environment and cwd.
    local h=(perl -MCwd -e '
        open my $status, "<", "/proc/self/status" or die;
        my @signals = grep { /^Sig(Blk|Ign):/ } <$status>;
        close $status;
        opendir my $dir, "/proc/self/fd" or die;
        my @fds = sort { $a <=> $b } grep { /^\d+$/ && readlink("/proc/self/fd/$_") !~ m{^/proc/\d+/fd$} } readdir $dir;
        closedir $dir;
        sub put { open my $f, ">", "$ENV{D}/$_[0]" or die; print $f $_[1]; close $f }
        put("signals", join("", @signals));
        put("fds", join(" ", @fds) . "\n");
        put("env", join("", map { "$_=$ENV{$_}\n" } sort keys %ENV));
        put("cwd", getcwd() . "\n");')
    export D
    mkdir "$D/cwd-here"
    # Started with signals ignored (as under nohup) and blocked: none of it reaches the handler.
    (cd "$D/cwd-here" && exec perl -MPOSIX -e '
        $SIG{USR1} = "IGNORE"; $SIG{HUP} = "IGNORE"; $SIG{TERM} = "IGNORE";
        sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGUSR2, SIGALRM, SIGTERM));
        exec @ARGV or die' workq-work --burst --name wname q -- "${h[@]}") >"$D/w.out" 2>"$D/w.log" 3>&- &
    WORKER_PIDS+=("$!")
    wait_exit "$!" 20
    assert_equal "$EXIT_CODE" 0
    WORKQ_TEST_REDIS_SOCKET="$own/redis.sock" REDISCLI_AUTH=s3cret-pw assert_raw_state q "$id" succeeded
    ! grep -q '^WORKQ_REDIS_PASSWORD=' "$D/env" || fail "the password reached the handler"
    ! grep -q '^WORKQ_REDIS_URL=' "$D/env" || fail "the URL reached the handler"
    ! grep -q 's3cret-pw' "$D/env" || fail "the password reached the handler"
    grep -qx "WORKQ_JOB_ID=$id" "$D/env"
    grep -qx "WORKQ_QUEUE=q" "$D/env"
    grep -qx "WORKQ_ATTEMPT=1" "$D/env"
    grep -qx "WORKQ_MAX_ATTEMPTS=4" "$D/env"
    grep -qx "WORKQ_NAMESPACE=$WORKQ_NAMESPACE" "$D/env"  # the rest of the worker's environment
    local worker_id state_dir
    worker_id=$(sed -n 's/^WORKQ_WORKER_ID=//p' "$D/env")
    [ -n "$worker_id" ] || fail "no WORKQ_WORKER_ID"
    state_dir=$(sed -n 's/^WORKQ_STATE_DIR=//p' "$D/env")
    [[ "$state_dir" == "$XDG_STATE_HOME"/workq/*/wname/* ]] || fail "WORKQ_STATE_DIR is $state_dir"
    # The directory being listed aside, only 0, 1 and 2.
    assert_equal "$(cat "$D/fds")" "0 1 2"
    # Nothing blocked, nothing ignored (the worker itself ignores SIGPIPE; perl ignores SIGFPE,
    # 0x80, on its own at startup).
    local blocked ignored
    blocked=$(sed -n 's/^SigBlk:[[:space:]]*//p' "$D/signals")
    ignored=$(sed -n 's/^SigIgn:[[:space:]]*//p' "$D/signals")
    assert_equal "$blocked" 0000000000000000
    assert_equal "$((16#$ignored & ~0x80))" 0
    assert_equal "$(cat "$D/cwd")" "$D/cwd-here"
    ! grep -q s3cret-pw "$D/w.log" || fail "the password is in the log"
    assert_no_stdout w
}

@test "WORKQ_STATE_DIR: one directory per slot kept from job to job; without --name removed at a clean exit" {
    workq-enqueue q one two three >/dev/null
    local h
    h=$(make_handler h <<'EOF'
echo "$WORKQ_STATE_DIR" >>"$D/dirs"
ls "$WORKQ_STATE_DIR" >>"$D/seen"
: >"$WORKQ_STATE_DIR/$(cat)"
EOF
)
    export D
    start_worker w --burst q -- "$h"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(sort -u "$D/dirs" | wc -l)" 1
    # The files of earlier jobs are there for later ones.
    assert_equal "$(sort -u "$D/seen" | tr '\n' ' ')" "one two "
    [ ! -e "$(head -1 "$D/dirs")" ] || fail "the state directory of an unnamed worker was kept"

    workq-enqueue q four >/dev/null
    start_worker named --burst --name keeper q -- "$h"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    [ -f "$(tail -1 "$D/dirs")/four" ] || fail "the state directory of worker 'keeper' is gone"
    [[ "$(tail -1 "$D/dirs")" == */keeper/* ]] || fail "not under the worker's name: $(tail -1 "$D/dirs")"
}

@test "--arg: the payload is COMMAND's last argument, no shell involved; arguments after -- are taken verbatim" {
    id=$(workq-enqueue q 'a b; $(touch nope) "q"')
    start_worker w --burst --arg q -- printf '[%s]'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(job_field q "$id" result)" '[a b; $(touch nope) "q"]'
    [ ! -e nope ] && [ ! -e "$D/nope" ]
}

@test "--arg with a payload holding a NUL byte: dead at once with a reason, the queue keeps flowing" {
    nul=$(printf 'a\0b' | workq-enqueue --whole q)
    fine=$(workq-enqueue q fine)
    start_worker w --burst --arg q -- printf '%s'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 1
    assert_raw_state q "$nul" dead
    assert_equal "$(job_field q "$nul" reason)" payload
    assert_raw_state q "$fine" succeeded
    assert_equal "$(job_field q "$fine" result)" fine
}

@test "--arg with a payload over the kernel's limit for one argument (128 KiB): that job dead with a reason; the worker and the queue go on" {
    big=$(head -c 200000 /dev/zero | tr '\0' a | workq-enqueue --whole q)
    fine=$(workq-enqueue q fine)
    start_worker w --burst --arg q -- printf '%s'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 1
    assert_raw_state q "$big" dead
    assert_equal "$(job_field q "$big" reason)" payload
    [[ "$(job_field q "$big" error)" == *"200000 bytes"*"stdin"* ]] ||
        fail "the error does not say why: $(job_field q "$big" error)"
    assert_raw_state q "$fine" succeeded
    ! log_has w "cannot execute COMMAND" || fail "the worker took the payload for a bad COMMAND"
}

@test "a state directory that cannot be made: exit 4 before anything is claimed, naming it" {
    id=$(workq-enqueue q x)
    XDG_STATE_HOME=/proc/1/no-such-dir start_worker w --burst q -- true
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 4
    assert_log w "cannot create the handlers' state directory /proc/1/no-such-dir"
    assert_raw_state q "$id" waiting
}

# ---- misbehaving handlers --------------------------------------------------------------------

@test "a handler that never reads a large payload from stdin does not block the worker" {
    big=$(head -c 1000000 /dev/zero | tr '\0' a | workq-enqueue --whole q)
    small=$(workq-enqueue q small)
    start_worker w --burst -c 2 q -- sh -c 'sleep 0.2; echo ok'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$big" succeeded
    assert_raw_state q "$small" succeeded
}

@test "the whole payload reaches a handler that reads it, bytes exactly" {
    head -c 300000 /dev/urandom >"$D/payload"
    id=$(workq-enqueue --whole q <"$D/payload")
    start_worker w --burst q -- sh -c 'cat >"$0"' "$D/got"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    cmp "$D/payload" "$D/got"
}

@test "a handler that closes stdout early still runs to its exit" {
    id=$(workq-enqueue q x)
    start_worker w --burst q -- sh -c 'echo partial; exec >&-; sleep 0.3; echo "$0" >"$1"' ended "$D/end"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$id" succeeded
    assert_equal "$(cat "$D/end")" ended
    assert_equal "$(job_field q "$id" result)" partial
}

@test "a handler flooding stdout: the result is cut at --max-result, the cut is recorded and logged" {
    id=$(workq-enqueue q x)
    start_worker w --burst --max-result 1000 q -- sh -c 'head -c 3000000 /dev/zero | tr "\0" x'
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$id" succeeded
    assert_equal "$(job_field q "$id" result | tr -d '\n' | wc -c)" 1000
    assert_log w "result cut at 1000 bytes"
    # The job says so itself: the dropped byte count, raw and through workq-status.
    assert_equal "$(job_field q "$id" truncated)" 2999000
    run --separate-stderr workq-status job --json "$id"
    assert_success
    [[ "$output" == *'"result_truncated":2999000'* ]] || fail "no result_truncated in: $output"
}

@test "a handler flooding stderr: every line relayed tagged with the job id; the error is the last 4 KiB" {
    id=$(workq-enqueue --max-attempts 1 q x)
    start_worker w --burst q -- sh -c 'seq -f "line %g of the flood" 20000 >&2; exit 1'
    wait_exit "$LAST_PID" 60
    assert_equal "$EXIT_CODE" 1
    assert_raw_state q "$id" dead
    assert_equal "$(grep -cF "[$id] line " "$D/w.log")" 20000
    grep -qF "[$id] line 20000 of the flood" "$D/w.log"
    local error
    error=$(job_field q "$id" error)
    [ "${#error}" -le 4096 ] && [ "${#error}" -ge 4000 ] || fail "error text of ${#error} bytes"
    [[ "$error" == *"line 20000 of the flood" ]] || fail "error text does not end with the last line"
}

# ---- COMMAND that cannot run -----------------------------------------------------------------

@test "COMMAND not found, not executable or a directory: exit 4 at start, nothing claimed" {
    id=$(workq-enqueue q x)
    run --separate-stderr workq-work q -- no-such-command-xyz
    assert_equal "$status" 4
    assert_equal "$output" ""
    [[ "$stderr" == *"no-such-command-xyz"* ]] || fail "$stderr"
    printf '#!/bin/sh\nexit 0\n' >"$D/noexec"
    run --separate-stderr workq-work q -- "$D/noexec"
    assert_equal "$status" 4
    [[ "$stderr" == *"not executable"* ]] || fail "$stderr"
    run --separate-stderr workq-work q -- "$D"
    assert_equal "$status" 4
    assert_raw_state q "$id" waiting
    assert_equal "$(job_attempts q "$id")" 0
}

@test "COMMAND that stops being executable while running: the job is released uncounted, exit 4" {
    printf '#!/bin/sh\nexit 0\n' >"$D/cmd"
    chmod +x "$D/cmd"
    start_worker w q -- "$D/cmd"
    wait_until 10 worker_field_is "$LAST_PID" state running
    chmod -x "$D/cmd"
    id=$(workq-enqueue q x)
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 4
    assert_raw_state q "$id" waiting
    assert_equal "$(job_attempts q "$id")" 0
    assert_equal "$(error_count q "$id")" 0
    assert_log w "cannot execute"
}

# ---- corrupted records -----------------------------------------------------------------------

@test "a corrupted job record is dead-lettered with a reason; the queue keeps flowing" {
    workq-enqueue q one two three four >"$D/ids"
    local bad bogus
    bad=$(sed -n 2p "$D/ids")
    bogus=$(sed -n 4p "$D/ids")
    rcli set "{$WORKQ_NAMESPACE:q}:job:$bad" x >/dev/null
    # A state workq never writes (issue 23, item 12): dead-lettered, not dropped from the list.
    rcli hset "{$WORKQ_NAMESPACE:q}:job:$bogus" state bogus >/dev/null
    # An id pushed without any record at all.
    rcli rpush "{$WORKQ_NAMESPACE:q}:waiting:0" ghost >/dev/null
    start_worker w --burst q -- sh -c 'cat >>"$0"; echo >>"$0"' "$D/ledger"
    wait_exit "$LAST_PID" 20
    assert_equal "$(sort "$D/ledger" | tr '\n' ' ')" "one three "
    assert_raw_state q "$bad" dead
    assert_raw_state q ghost dead
    [[ "$(job_field q "$bad" error)" == *"not a hash"* ]] || fail "$(job_field q "$bad" error)"
    assert_equal "$(job_field q "$bad" reason)" corrupt
    assert_equal "$(rcli get "{$WORKQ_NAMESPACE:q}:corrupt:$bad")" x
    assert_raw_state q "$(sed -n 1p "$D/ids")" succeeded
    assert_raw_state q "$(sed -n 3p "$D/ids")" succeeded
    assert_raw_state q "$bogus" dead
    assert_equal "$(job_field q "$bogus" reason)" corrupt
    [[ "$(job_field q "$bogus" error)" == *"'bogus'"* ]] || fail "$(job_field q "$bogus" error)"
    assert_equal "$(workq-dlq count q)" 3
    run grep -c 'AddressSanitizer\|runtime error' "$D/w.log"
    assert_output 0
}

# lines FILE: how many lines FILE holds (0 when it is not there yet).
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
# has_lines FILE N: FILE holds N lines or more (for wait_until).
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }

# Not on a cluster (no `cluster` tag): its raw damage is written per queue name with redis-cli;
# tests/topology/cluster.bats covers a worker claiming across slots.
@test "a damaged queue stops only itself: a q1,q0 worker keeps claiming q0, names q1 once, and serves it again once mended" {
    # Issue 23, item 2: a key of the wrong type in q1 stopped the worker claiming from both.
    local p1="{$WORKQ_NAMESPACE:q1}:" one
    one=$(workq-enqueue q1 one)
    rcli rename "${p1}meta" "${p1}meta-aside" >/dev/null
    rcli set "${p1}meta" x >/dev/null
    start_worker w q1,q0 -- sh -c 'cat >>"$0"; echo >>"$0"' "$D/ledger"
    seq 3 | workq-enqueue q0 >/dev/null
    wait_until 20 has_lines "$D/ledger" 3
    assert_equal "$(sort "$D/ledger" | tr '\n' ' ')" "1 2 3 "
    # Nothing of q1 was touched.
    assert_equal "$(rcli lrange "${p1}waiting:0" 0 -1)" "$one"
    assert_raw_state q1 "$one" waiting
    assert_log w "the queue is damaged: ${p1}meta holds a string where workq keeps a hash"
    assert_log w "the other queues are served as usual"
    # Named once, not at every claim.
    assert_equal "$(grep -c 'the queue is damaged' "$D/w.log")" 1
    # Mended: the next claim (woken by an enqueue) serves it again.
    rcli del "${p1}meta" >/dev/null
    rcli rename "${p1}meta-aside" "${p1}meta" >/dev/null
    workq-enqueue q1 two >/dev/null
    wait_until 20 has_lines "$D/ledger" 5
    assert_log w "the queue is no longer damaged"
    assert_equal "$(sort "$D/ledger" | tr '\n' ' ')" "1 2 3 one two "
    run grep -c 'AddressSanitizer\|runtime error' "$D/w.log"
    assert_output 0
}

@test "a wake key of another type on a paused queue: the worker's wait is not broken, and it claims after resume" {
    local p="{$WORKQ_NAMESPACE:q}:"
    workq-queue pause --create q 2>/dev/null || workq-queue pause q
    rcli set "${p}wake" x >/dev/null
    start_worker w q,other -- sh -c 'cat >>"$0"; echo >>"$0"' "$D/ledger"
    workq-enqueue other a >/dev/null
    wait_until 20 has_lines "$D/ledger" 1
    # Replaced by the claim: the worker waits on it as usual.
    [ "$(rcli type "${p}wake")" != string ] || fail "the wake key is still a string"
    workq-enqueue q b >/dev/null
    workq-queue resume q
    wait_until 20 has_lines "$D/ledger" 2
    run grep -c 'waiting for jobs failed' "$D/w.log"
    assert_output 0
}

# ---- modes -----------------------------------------------------------------------------------

# bats test_tags=cluster
@test "--max-jobs N: exit 0 after N jobs (even with more slots), the rest left waiting" {
    seq 5 | workq-enqueue q >"$D/ids"
    start_worker w --max-jobs 2 -c 4 q -- cat
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(meta_field q succeeded)" 2
    assert_raw_state q "$(sed -n 1p "$D/ids")" succeeded
    assert_raw_state q "$(sed -n 2p "$D/ids")" succeeded
    assert_raw_state q "$(sed -n 3p "$D/ids")" waiting
    assert_raw_state q "$(sed -n 5p "$D/ids")" waiting
    assert_equal "$(rcli zcard "{$WORKQ_NAMESPACE}:workers")" 0
    assert_no_stdout w
}

@test "--max-runtime: an idle worker exits 0 after that long" {
    local t0
    t0=$(now_ms)
    start_worker w --max-runtime 1s q -- cat
    wait_exit "$LAST_PID" 10
    assert_equal "$EXIT_CODE" 0
    local took=$(($(now_ms) - t0))
    [ "$took" -ge 1000 ] || fail "exited after ${took}ms"
    assert_log w "--max-runtime"
}

@test "--burst with nothing due exits 0 at once" {
    workq-enqueue --delay 1h q later >/dev/null
    start_worker w --burst q -- cat
    wait_exit "$LAST_PID" 10
    assert_equal "$EXIT_CODE" 0
    assert_no_stdout w
}

# bats test_tags=cluster
@test "several queues: strict priority in the order given; within a queue priority, then FIFO" {
    # On a cluster, two queues of one slot (one_slot_queues).
    local a b
    { read -r a && read -r b; } < <(one_slot_queues a b)
    workq-enqueue "$b" b1 b2 >/dev/null
    workq-enqueue "$a" a1 a2 >/dev/null
    workq-enqueue --priority 5 "$a" a-high >/dev/null
    workq-enqueue --priority 5 "$b" b-high >/dev/null
    start_worker w --burst "$a,$b" -- sh -c 'cat >>"$0"; echo >>"$0"' "$D/ledger"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_equal "$(tr '\n' ' ' <"$D/ledger")" "a-high a1 a2 b-high b1 b2 "
}

@test "a job enqueued while the worker waits is claimed at once (no polling delay)" {
    # A server of our own, so that its blocked_clients is this worker's wait alone. The worker
    # blocks on the queue's wake-up list for 5 s at a time (idle_block): a worker that polled,
    # or missed the wake-up, would start the job about 5 s after the enqueue. The handler
    # stamps when it starts, so neither the tools' start-up nor this test's polling is in the
    # figure.
    local own="$BATS_TEST_TMPDIR/own"
    mkdir -p "$own"
    start_redis "$own"
    export WORKQ_REDIS_URL="unix://$own/redis.sock" WORKQ_TEST_REDIS_SOCKET="$own/redis.sock"
    start_worker w q -- sh -c 'date +%s%3N >>"$0"; cat' "$D/started"
    wait_until 10 worker_field_is "$LAST_PID" state running
    wait_until 10 eval '[ "$(redis_info_field "$own/redis.sock" blocked_clients)" = 1 ]'
    local t0
    t0=$(now_ms)
    id=$(workq-enqueue q x)
    wait_until 20 state_is q "$id" succeeded
    local took=$(($(head -1 "$D/started") - t0))
    [ "$took" -lt 4000 ] || fail "the handler started ${took} ms after the enqueue"
}

@test "--log-format json: every line on stderr is one JSON object" {
    workq-enqueue q x >/dev/null
    start_worker w --burst --log-format json --log-level debug q -- sh -c 'echo "relayed line" >&2'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    local line
    while IFS= read -r line; do
        [[ "$line" == "{"*"}" ]] || fail "not a JSON line: $line"
    done <"$D/w.log"
    grep -q 'relayed line' "$D/w.log"
    grep -q 'job succeeded' "$D/w.log"
}

@test "on connecting, the worker warns when the server may lose or evict jobs" {
    local own="$BATS_TEST_TMPDIR/own"
    mkdir -p "$own"
    start_redis "$own" --maxmemory-policy allkeys-lru
    export WORKQ_REDIS_URL="unix://$own/redis.sock"
    start_worker w --max-runtime 100ms q -- cat
    wait_exit "$LAST_PID" 10
    assert_equal "$EXIT_CODE" 0
    assert_log w "maxmemory-policy"
    assert_log w "append-only"
}

# ---- bad flags -------------------------------------------------------------------------------

@test "bad flags are usage errors (exit 2) naming the problem, before anything runs" {
    local args
    for args in "--timeout 5x q -- cat" "--lease soon q -- cat" "--concurrency 0 q -- cat" \
        "-c -3 q -- cat" "--backoff nope q -- cat" "--backoff 2s,1s q -- cat" \
        "--kill-grace -1s q -- cat" "--shutdown-timeout 1y q -- cat" "--no-such-flag q -- cat" \
        "--permanent-exit-codes 0 q -- cat" "--permanent-exit-codes 300 q -- cat" \
        "--max-jobs -1 q -- cat" "--max-result lots q -- cat" "q" "bad/queue -- cat" \
        "a,,b -- cat" "--name ../x q -- cat"; do
        # shellcheck disable=SC2086
        run --separate-stderr workq-work $args
        [ "$status" -eq 2 ] || fail "workq-work $args: exit $status, expected 2 ($stderr)"
        [ -z "$output" ] || fail "workq-work $args wrote to stdout: $output"
        [[ "$stderr" == workq-work:* ]] || fail "workq-work $args: $stderr"
    done
    run --separate-stderr workq-work --timeout 5x q -- cat
    [[ "$stderr" == *"--timeout"* ]] || fail "$stderr"
    run --separate-stderr workq-work --concurrency 0 q -- cat
    [[ "$stderr" == *"concurrency"* ]] || fail "$stderr"
    run --separate-stderr workq-work q
    [[ "$stderr" == *COMMAND* ]] || fail "$stderr"
}

@test "an unreachable server at start: exit 3" {
    run --separate-stderr workq-work --redis "unix://$D/nothing.sock" q -- cat
    assert_equal "$status" 3
    assert_equal "$output" ""
}

@test "--help describes the lifecycle, signals and exit status; nothing runs" {
    run --separate-stderr workq-work --help
    assert_success
    for word in initializing starting running paused draining stopped error SIGTERM SIGHUP \
        SIGTSTP --shutdown-timeout --kill-grace --burst WORKQ_STATE_DIR "Exit status"; do
        [[ "$output" == *"$word"* ]] || fail "--help lacks $word"
    done
}
