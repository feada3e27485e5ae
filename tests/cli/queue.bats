#!/usr/bin/env bats
# workq-queue (CONTRACT.md §5, issue 12): pause and resume across workers, cancel of waiting,
# scheduled and running jobs, unknown ids, ids from stdin, purge (and 100,000 jobs of it in
# bounded memory), and `ls` in the order jobs run with the README's --json fields.

load ops_helpers

# One cluster for the file when WORKQ_TEST_TOPOLOGY=cluster (helpers.bash).
setup_file() { workq_test_setup_file; }
teardown_file() { workq_test_teardown_file; }

setup() { ops_setup; }
teardown() { ops_teardown; }

RFC3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'

# recorder: a handler that appends "<payload> <worker id>" to $D/ledger.
recorder() {
    make_handler recorder <<'EOF'
echo "$(cat) $WORKQ_WORKER_ID" >>"$D/ledger"
EOF
}

# ---- pause, resume ------------------------------------------------------------------------------

# bats test_tags=cluster
@test "pause: no worker anywhere claims, enqueue still works, status shows it; resume wakes them" {
    export D
    local h
    h=$(recorder)
    start_worker a q -- "$h"
    local a=$LAST_PID
    wait_until 10 worker_listed_live "$a"

    run --separate-stderr workq-queue pause q
    assert_success
    assert_output ""
    assert_regex "$stderr" "queue q paused"
    # A second worker starts while the queue is paused.
    start_worker b q -- "$h"
    local b=$LAST_PID
    wait_until 10 worker_listed_live "$b"

    run --separate-stderr workq-enqueue q 1 2 3 4 5 6
    assert_success
    assert_equal "${#lines[@]}" 6
    printf '%s\n' "${lines[@]}" >"$D/ids"
    sleep 1
    [ ! -e "$D/ledger" ] || fail "a job ran while the queue was paused: $(cat "$D/ledger")"
    while read -r id; do assert_raw_state q "$id" waiting; done <"$D/ids"
    run --separate-stderr workq-status --json q
    assert_json "$output" '.queues[0] | .paused == true and .waiting == 6 and .running == 0'
    run --separate-stderr workq-status q
    assert_equal "$(awk '$1 == "q" { print $10 }' <<<"$output")" paused
    run --separate-stderr workq-queue pause q
    assert_success
    assert_regex "$stderr" "already paused"

    run --separate-stderr workq-queue resume q
    assert_success
    assert_output ""
    # How soon is not asserted (a loaded machine makes any bound flaky): that resume wakes idle
    # workers rather than leaving them to their next idle poll is the next test's wake-up.
    wait_until 60 has_lines "$D/ledger" 6 || fail "resume did not restart the workers: $(cat "$D/ledger"; tail -n 20 "$D/a.log" "$D/b.log")"
    assert_equal "$(cut -d' ' -f1 "$D/ledger" | sort -n | tr '\n' ' ')" "1 2 3 4 5 6 "
    run --separate-stderr workq-status --json q
    assert_json "$output" '.queues[0] | .paused == false and .waiting == 0 and .succeeded == 6'
}

@test "pause and resume of a queue nothing was enqueued to yet; resume leaves a wake-up; bad queue names are usage errors" {
    run --separate-stderr workq-queue pause --create fresh
    assert_success
    run --separate-stderr workq-status --json
    assert_json "$output" '.queues | map(select(.name == "fresh")) | .[0].paused == true'
    # Idle workers block on the queue's wake-up list: resume pushes one, so that they claim at
    # once instead of at the end of their idle wait (no worker here takes it).
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:fresh}:wake")" 0
    run --separate-stderr workq-queue resume fresh
    assert_success
    assert_equal "$(rcli llen "{$WORKQ_NAMESPACE:fresh}:wake")" 1
    run --separate-stderr workq-status --json
    assert_json "$output" '.queues | map(select(.name == "fresh")) | .[0].paused == false'
    run --separate-stderr workq-queue pause 'bad name'
    assert_failure 2
    run --separate-stderr workq-queue resume
    assert_failure 2
}

@test "pause or resume of a queue the namespace never saw: exit 1, nothing made, unless --create" {
    workq-enqueue mail x >/dev/null
    run --separate-stderr workq-queue pause mial
    assert_failure 1
    [[ "$stderr" == *"no queue mial"*"nothing paused"*"--create"* ]] || fail "$stderr"
    run --separate-stderr workq-queue resume mial
    assert_failure 1
    [[ "$stderr" == *"nothing resumed"* ]] || fail "$stderr"
    run --separate-stderr workq-status --json
    assert_json "$output" '[.queues[].name] == ["mail"] and .queues[0].paused == false'
    run --separate-stderr workq-queue pause mail
    assert_success
    run --separate-stderr workq-queue resume mail
    assert_success
}

# ---- rm -----------------------------------------------------------------------------------------

@test "rm removes a queue a typo made: gone from status and --check; refused for an unknown one" {
    workq-enqueue mail x >/dev/null
    local id
    id=$(workq-enqueue mial x)
    workq-queue cancel "$id" >/dev/null
    workq-queue pause mial
    run --separate-stderr workq-queue rm mial
    assert_success
    assert_output ""
    [[ "$stderr" == *"queue mial removed"* ]] || fail "$stderr"
    run --separate-stderr workq-status --json
    assert_json "$output" '[.queues[].name] == ["mail"]'
    run --separate-stderr workq-status --check
    [[ "$output" != *mial* ]] || fail "$output"
    # Its ended job is still found until it expires.
    run --separate-stderr workq-status job "$id"
    assert_success
    assert_output --regexp "^$id +cancelled"
    [ "$(rcli exists "{$WORKQ_NAMESPACE:mial}:meta")" = 0 ] || fail "its meta is left"
    run --separate-stderr workq-queue rm mial
    assert_failure 1
    [[ "$stderr" == *"no queue mial"* ]] || fail "$stderr"
    run --separate-stderr workq-queue pause mial
    assert_failure 1
    # A new enqueue makes it again, fresh.
    workq-enqueue mial y >/dev/null
    run --separate-stderr workq-status --json mial
    assert_json "$output" '.queues[0] | .waiting == 1 and .paused == false'
}

# bats test_tags=cluster
@test "rm refuses while the queue holds jobs or dead letters, naming them; --force removes them and says so" {
    export D
    # The dead letter first: make_dead_letters claims the queue's oldest jobs.
    make_dead_letters q 1
    seq 2 | workq-enqueue q >/dev/null
    workq-enqueue --delay 1h q later >/dev/null
    run --separate-stderr workq-queue rm q
    assert_failure 1
    [[ "$stderr" == *"q holds 2 waiting jobs, 1 scheduled job, 1 dead letter: not removed"* ]] || fail "$stderr"
    run --separate-stderr workq-status --json
    assert_json "$output" '.queues | map(select(.name == "q")) | .[0] | .waiting == 2 and .dead == 1'
    # A running job too.
    local running
    running=$(workq-enqueue --priority 9 q busy)
    start_worker w --max-jobs 1 q -- sh -c 'cat >/dev/null; exec sleep 60'
    wait_until 10 state_is q "$running" running
    run --separate-stderr workq-queue rm q
    assert_failure 1
    [[ "$stderr" == *"1 running job"* ]] || fail "$stderr"
    run --separate-stderr workq-queue rm q --force
    [ "$status" -eq 0 ] || fail "exit $status: $stderr"
    [[ "$stderr" == *"--force: removing queue q and what it holds: 2 waiting jobs, 1 scheduled job, 1 running job, 1 dead letter"* ]] || fail "$stderr"
    [[ "$stderr" == *"told to stop"* ]] || fail "$stderr"
    run --separate-stderr workq-status --json
    assert_json "$output" '.queues | map(select(.name == "q")) | length == 0'
    # The running job's worker stops it; it ends cancelled, not retried.
    wait_until 15 state_is q "$running" cancelled
    assert_equal "$(rcli zcard "{$WORKQ_NAMESPACE:q}:dead")" 0
}

# bats test_tags=cluster
@test "cancel of waiting and scheduled jobs: removed at once, ids printed, state cancelled; the unique key is free again" {
    local waiting scheduled kept unique
    waiting=$(workq-enqueue q a)
    scheduled=$(workq-enqueue --delay 1h q b)
    kept=$(workq-enqueue q c)
    unique=$(workq-enqueue --unique report-7 q d)
    run --separate-stderr workq-queue cancel "$waiting" "$scheduled" "$unique"
    assert_success
    assert_equal "$output" "$waiting"$'\n'"$scheduled"$'\n'"$unique"
    assert_raw_state q "$waiting" cancelled
    assert_raw_state q "$scheduled" cancelled
    run --separate-stderr workq-status job "$waiting" "$scheduled"
    assert_line --index 0 --regexp "^$waiting +cancelled "
    assert_line --index 1 --regexp "^$scheduled +cancelled "
    run --separate-stderr workq-queue ls q --json
    assert_equal "$(jq -r .id <<<"$output")" "$kept"
    run --separate-stderr workq-status --json q
    assert_json "$output" '.queues[0] | .waiting == 1 and .scheduled == 0 and .failed == 0 and .dead == 0'
    # While the job held it, --unique gave its id; once cancelled, a new job is made.
    local again
    again=$(workq-enqueue --unique report-7 q d)
    [ "$again" != "$unique" ] || fail "the cancelled job still holds its unique key"
}

# Issue 23, item 12: cancel said "the job ends cancelled" of a running job whose handler then
# ended first, and the job ended succeeded. It says what it did: it asked.
@test "cancel of a running job whose handler ends first: the job ends succeeded, and cancel never said otherwise" {
    export D
    local h
    h=$(make_handler h <<'EOF'
cat >/dev/null
: >"$D/started"
while [ ! -e "$D/go" ]; do sleep 0.05; done
printf done
EOF
)
    # Renewal every 20 s: the handler ends long before the worker hears of the cancel.
    start_worker w --lease 60s q -- "$h"
    local id
    id=$(workq-enqueue q job)
    wait_until 10 test -e "$D/started"
    run --separate-stderr workq-queue cancel "$id"
    assert_success
    assert_output "$id"
    [[ "$stderr" != *"ends cancelled"* || "$stderr" == *"unless the handler ends first"* ]] ||
        fail "cancel promised an outcome: $stderr"
    assert_regex "$stderr" "cancel requested"
    touch "$D/go"
    wait_until 10 state_is q "$id" succeeded
    assert_equal "$(job_field q "$id" result)" done
}

# bats test_tags=cluster
@test "cancel of a running job: its handler's process group is stopped, the job ends cancelled, not retried, not a failure" {
    export D
    local h
    h=$(make_handler h <<'EOF'
cat >/dev/null
echo $$ >>"$D/h.pid"
sleep 60 &
echo $! >>"$D/h.pid"
wait
EOF
)
    # Renewal every lease/3 = 1s: the worker hears of the cancel within about a second.
    start_worker w --lease 3s q -- "$h"
    local id
    id=$(workq-enqueue q job)
    wait_until 10 has_lines "$D/h.pid" 2
    local pgid
    pgid=$(head -1 "$D/h.pid")

    local t0
    t0=$(now_ms)
    run --separate-stderr workq-queue cancel "$id"
    assert_success
    assert_output "$id"
    assert_regex "$stderr" "job $id is running"
    wait_until 10 group_gone "$pgid" || fail "the handler's process group is still there"
    wait_until 5 state_is q "$id" cancelled
    echo "# cancel -> handler group gone, state cancelled in $(($(now_ms) - t0))ms" >&3
    # Not retried: it stays cancelled and the handler never runs again.
    sleep 1
    assert_raw_state q "$id" cancelled
    assert_equal "$(wc -l <"$D/h.pid")" 2
    assert_equal "$(job_field q "$id" attempts)" 1
    run --separate-stderr workq-status job --json "$id"
    assert_json "$output" '.state == "cancelled" and .attempts == 1'
    # Not a failed attempt, not a dead letter.
    run --separate-stderr workq-status --json q
    assert_json "$output" '.queues[0] | .failed == 0 and .dead == 0 and .running == 0 and .scheduled == 0 and .waiting == 0'
    assert_equal "$(workq-dlq count q)" 0
    # The worker goes on: the next job runs.
    local next
    next=$(workq-enqueue q next)
    wait_until 10 has_lines "$D/h.pid" 4
    assert_raw_state q "$next" running
}

@test "a cancelled running job is not in its worker's failed count" {
    export D
    start_worker w --lease 3s q -- sh -c 'cat >/dev/null; echo $$ >>"$0/h.pid"; exec sleep 60' "$D"
    local worker=$LAST_PID id
    id=$(workq-enqueue q job)
    wait_until 10 has_lines "$D/h.pid" 1
    workq-queue cancel "$id" >/dev/null 2>&1
    wait_until 10 state_is q "$id" cancelled
    # SIGTSTP: the worker reports its counters at once (a change of state is a heartbeat).
    kill -TSTP "$worker"
    wait_until 10 worker_field_is "$worker" state paused
    kill -CONT "$worker"
    run --separate-stderr workq-status --json
    assert_json "$output" '.workers[0] | .failed == 0'
}

@test "cancel: unknown, malformed and already ended ids are named on stderr, exit 1; the others are cancelled" {
    local a b done_id
    a=$(workq-enqueue q a)
    b=$(workq-enqueue q b)
    done_id=$(workq-enqueue q c)
    workq-queue cancel "$done_id" >/dev/null
    run --separate-stderr workq-queue cancel nope "$a" 'bad/id' "$done_id" "$b"
    assert_failure 1
    assert_equal "$output" "$a"$'\n'"$b"
    assert_regex "$stderr" "workq-queue: error: cannot cancel nope: unknown job"
    assert_regex "$stderr" "workq-queue: error: cannot cancel 'bad/id': unknown job"
    assert_regex "$stderr" "workq-queue: error: cannot cancel $done_id: it already ended cancelled"
    assert_raw_state q "$a" cancelled
    assert_raw_state q "$b" cancelled
    # Nothing named: a usage error.
    run --separate-stderr workq-queue cancel
    assert_failure 2
}

@test "cancel - reads ids from stdin, one per line (a pipeline from ls --json)" {
    workq-enqueue --priority 1 q spam-1 spam-2 >"$D/spam"
    local ham
    ham=$(workq-enqueue q ham)
    run --separate-stderr bash -c \
        "workq-queue ls q --json | jq -r 'select(.payload_preview | test(\"spam\")) | .id' | workq-queue cancel -"
    assert_success
    assert_equal "$output" "$(cat "$D/spam")"
    assert_equal "$(workq-queue ls q --json | jq -r .id)" "$ham"
    run --separate-stderr workq-queue cancel - < <(printf '%s\n\nnope\n' "$ham")
    assert_failure 1
    assert_output "$ham"
}

# ---- purge --------------------------------------------------------------------------------------

@test "purge asks at a terminal, with the number; only y or yes purges; --yes and scripts are not asked" {
    seq 3 | workq-enqueue q >/dev/null
    workq-enqueue --delay 1h q later >/dev/null
    run at_terminal workq-queue purge q --waiting <<<"n"
    assert_output --partial "cancel all 3 waiting job(s) of queue q? [y/N]"
    assert_output --partial "nothing purged"
    run --separate-stderr workq-queue ls q --json
    assert_equal "${#lines[@]}" 4
    run at_terminal workq-queue purge q <<<"y"
    assert_output --partial "cancel all 4 waiting and scheduled job(s) of queue q? [y/N]"
    # The count follows the question (the typed line was echoed before it was asked).
    assert_regex "${lines[-1]}" '\[y/N\] 4$'
    assert_equal "$(workq-queue ls q --ids)" ""
    workq-enqueue q again >/dev/null
    run at_terminal workq-queue purge q --yes
    refute_output --partial "[y/N]"
    assert_output 1
    # stdin not a terminal: no question (a script needs no --yes).
    workq-enqueue q again >/dev/null
    run --separate-stderr workq-queue purge q </dev/null
    assert_success
    assert_output 1
    assert_equal "$stderr" ""
}

# bats test_tags=cluster
@test "purge prints how many it cancelled: --scheduled, --waiting, both" {
    workq-enqueue q w1 w2 w3 >"$D/waiting"
    workq-enqueue --delay 1h q s1 s2 >"$D/scheduled"
    run --separate-stderr workq-queue purge q --scheduled
    assert_success
    assert_output 2
    while read -r id; do assert_raw_state q "$id" cancelled; done <"$D/scheduled"
    while read -r id; do assert_raw_state q "$id" waiting; done <"$D/waiting"
    run --separate-stderr workq-queue purge q --waiting
    assert_output 3
    while read -r id; do assert_raw_state q "$id" cancelled; done <"$D/waiting"
    run --separate-stderr workq-queue purge q
    assert_success
    assert_output 0

    workq-enqueue q w4 w5 >/dev/null
    workq-enqueue --delay 1h q s3 >/dev/null
    workq-enqueue --priority 5 q w6 >/dev/null
    run --separate-stderr workq-queue purge q
    assert_output 4
    run --separate-stderr workq-status --json q
    assert_json "$output" '.queues[0] | .waiting == 0 and .scheduled == 0 and .failed == 0'
    run --separate-stderr workq-queue purge q --waiting --scheduled
    assert_output 0
}

# Peak memory: purge runs in server-side batches of 1000, so the tool holds no id at all. With
# ASan's quarantine off (see ops_helpers) the ASan build peaks at about 38 MiB for 100,000 as for
# none (a plain build far less); the ceiling, 64 MiB, leaves room for noise but not for a list of
# the jobs.
@test "purge of 100,000 waiting jobs: every one cancelled, in bounded memory" {
    use_own_redis
    local t0=$SECONDS
    seq 100000 | workq-enqueue q >"$D/ids"
    echo "# enqueued 100,000 in $((SECONDS - t0))s" >&3
    t0=$(now_ms)
    ASAN_OPTIONS=$(asan_no_quarantine) /usr/bin/time -f %M -o "$D/rss" \
        workq-queue purge q >"$D/out" 2>"$D/err"
    local took=$(($(now_ms) - t0)) rss_kib
    rss_kib=$(peak_rss_kib "$D/rss")
    echo "# purge of 100,000: ${took}ms, peak RSS ${rss_kib} KiB" >&3
    assert_equal "$(cat "$D/out")" 100000
    assert_equal "$(workq-status --json q 2>/dev/null | jq '.queues[0].waiting')" 0
    assert_raw_state q "$(head -1 "$D/ids")" cancelled
    assert_raw_state q "$(tail -1 "$D/ids")" cancelled
    [ "$rss_kib" -lt 65536 ] || fail "peak RSS ${rss_kib} KiB, over the 64 MiB ceiling"
}

# ---- ls -----------------------------------------------------------------------------------------

# bats test_tags=cluster
@test "ls: running first, then waiting by priority then age, then scheduled by due time; --state, --limit" {
    export D
    local running
    running=$(workq-enqueue q busy)
    start_worker w --max-jobs 1 q -- sh -c 'cat >/dev/null; exec sleep 60'
    wait_until 10 state_is q "$running" running
    local s2 s1 p0a p0b p5 pm1
    s2=$(workq-enqueue --delay 2h q later)
    s1=$(workq-enqueue --delay 1h q soon)
    p0a=$(workq-enqueue q first)
    p0b=$(workq-enqueue q second)
    pm1=$(workq-enqueue --priority -1 q low)
    p5=$(workq-enqueue --priority 5 q high)

    run at_terminal workq-queue ls q
    assert_success
    assert_equal "${#lines[@]}" 8
    assert_regex "${lines[0]}" '^ID +STATE +PRIO +ATTEMPTS +WHEN +WORKER +PAYLOAD$'
    assert_regex "${lines[1]}" "^$running +running +0 +1/10 +lease [0-9.]+s left +[A-Za-z0-9]+ +busy$"
    assert_regex "${lines[2]}" "^$p5 +waiting +5 +0/10 +enqueued .* high$"
    assert_regex "${lines[3]}" "^$p0a +waiting +0 .* first$"
    assert_regex "${lines[4]}" "^$p0b +waiting +0 .* second$"
    assert_regex "${lines[5]}" "^$pm1 +waiting +-1 .* low$"
    assert_regex "${lines[6]}" "^$s1 +scheduled +0 +0/10 +runs in (59m|1h).* soon$"
    assert_regex "${lines[7]}" "^$s2 +scheduled .* later$"

    run --separate-stderr workq-queue ls q --json
    assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "$running $p5 $p0a $p0b $pm1 $s1 $s2 "
    run --separate-stderr workq-queue ls q --state waiting --json
    assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "$p5 $p0a $p0b $pm1 "
    run --separate-stderr workq-queue ls q --state scheduled --json
    assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "$s1 $s2 "
    run --separate-stderr workq-queue ls q --state running --json
    assert_equal "$(jq -r .id <<<"$output")" "$running"
    run --separate-stderr workq-queue ls q --limit 3 --json
    assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "$running $p5 $p0a "
    run --separate-stderr workq-queue ls q --state scheduled --limit 1
    assert_equal "${#lines[@]}" 1
    run --separate-stderr workq-queue ls q --state dead
    assert_failure 2
    run --separate-stderr workq-queue ls nothing-here
    assert_success
    assert_output ""
}

@test "ls in a pipe: no header, RFC 3339 times, '-' for an empty cell, the same fields on every row" {
    export D
    local running waiting scheduled
    running=$(workq-enqueue q busy)
    start_worker w --max-jobs 1 q -- sh -c 'cat >/dev/null; exec sleep 60'
    wait_until 10 state_is q "$running" running
    waiting=$(workq-enqueue q 'two words')
    scheduled=$(workq-enqueue --delay 1h q later)
    run --separate-stderr workq-queue ls q
    assert_success
    assert_equal "${#lines[@]}" 3
    assert_equal "$(awk '{ print $1 }' <<<"$output" | tr '\n' ' ')" "$running $waiting $scheduled "
    local t='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z'
    assert_regex "${lines[0]}" "^$running +running +0 +1/10 +$t +[A-Za-z0-9]+ +busy$"
    assert_regex "${lines[1]}" "^$waiting +waiting +0 +0/10 +$t +- +two words$"
    assert_regex "${lines[2]}" "^$scheduled +scheduled +0 +0/10 +$t +- +later$"
    # The scheduled job's time is its due time, the waiting one's when it was enqueued.
    [[ "$(awk '{ print $5 }' <<<"${lines[2]}")" > "$(awk '{ print $5 }' <<<"${lines[1]}")" ]]
    # --no-header at a terminal; the header is there without it.
    run at_terminal workq-queue ls q --state waiting
    assert_line --index 0 --regexp '^ID +STATE'
    assert_line --index 1 --regexp "^$waiting +waiting +0 +0/10 +enqueued "
    run at_terminal workq-queue ls q --state waiting --no-header
    assert_equal "${#lines[@]}" 1
    assert_line --index 0 --regexp "^$waiting +waiting"
}

@test "ls: --ids prints the ids alone; a note on stderr when the list is empty or --limit cut it" {
    seq 60 | workq-enqueue q >"$D/ids"
    run --separate-stderr workq-queue ls q --ids
    assert_success
    assert_equal "$output" "$(head -50 "$D/ids")"
    [[ "$stderr" == *"50 of 60 live jobs listed"*"--limit 0"* ]] || fail "$stderr"
    run --separate-stderr workq-queue ls q --ids --limit 0
    assert_equal "$output" "$(cat "$D/ids")"
    assert_equal "$stderr" ""
    run --separate-stderr workq-queue ls q --limit 60
    assert_equal "${#lines[@]}" 60
    assert_equal "$stderr" ""
    run --separate-stderr workq-queue ls q --state running
    assert_success
    assert_output ""
    [[ "$stderr" == *"no running jobs in queue q"* ]] || fail "$stderr"
    run --separate-stderr workq-queue ls q --state running -q
    assert_equal "$stderr" ""
    run --separate-stderr workq-queue ls q --ids --json
    assert_failure 2
    # --ids feeds cancel.
    workq-queue ls q --ids --limit 0 | workq-queue cancel - >/dev/null
    run --separate-stderr workq-queue ls q --ids
    assert_output ""
}

# bats test_tags=cluster
@test "ls --json: one object per line with the README's fields and types" {
    export D
    local running scheduled binary
    running=$(workq-enqueue --max-attempts 3 q busy)
    start_worker w --max-jobs 1 --lease 30s q -- sh -c 'cat >/dev/null; exec sleep 60'
    wait_until 10 state_is q "$running" running
    scheduled=$(workq-enqueue --delay 1h --priority 2 q "$(printf 'x%.0s' $(seq 100))")
    binary=$(printf 'bin\xff\x00ary' | workq-enqueue --whole q)

    run --separate-stderr workq-queue ls q --json
    assert_success
    assert_equal "${#lines[@]}" 3
    local line
    for line in "${lines[@]}"; do
        assert_json "$line" '(keys | contains(["id","queue","state","priority","attempts","max_attempts",
                "created_at","due_at","worker","lease_expires_at","payload_bytes"]))
            and (has("payload_preview") or has("payload_preview_base64"))
            and .queue == "q" and ([.priority,.attempts,.max_attempts,.payload_bytes] | all(type=="number"))
            and (.created_at|type) == "string"'
        assert_regex "$(jq -r .created_at <<<"$line")" "$RFC3339"
    done
    assert_json "${lines[0]}" '.state == "running" and .attempts == 1 and .max_attempts == 3
        and (.worker|type) == "string" and (.lease_expires_at|type) == "string" and .due_at == null
        and .payload_preview == "busy" and .payload_bytes == 4'
    assert_regex "$(jq -r .lease_expires_at <<<"${lines[0]}")" "$RFC3339"
    assert_json "${lines[1]}" '.state == "waiting" and .worker == null and .lease_expires_at == null
        and .payload_bytes == 8 and .payload_preview == null'
    assert_equal "$(jq -r .payload_preview_base64 <<<"${lines[1]}")" "$(printf 'bin\xff\x00ary' | base64)"
    assert_json "${lines[2]}" '.state == "scheduled" and .priority == 2 and (.due_at|type) == "string"
        and .payload_bytes == 100 and (.payload_preview | length) == 64'
}

@test "ls pages through long queues: --limit 0 lists every job, the default is 50" {
    seq 1200 | workq-enqueue q >"$D/ids"
    seq 700 | workq-enqueue --delay 1h q >"$D/later"
    run --separate-stderr workq-queue ls q --json --limit 0
    assert_success
    assert_equal "${#lines[@]}" 1900
    # Waiting in the order enqueued; scheduled soonest first (jobs due in the same millisecond
    # in the order of the scheduled set, as a worker promotes them).
    rcli zrange "{$WORKQ_NAMESPACE:q}:scheduled" 0 -1 >"$D/by-due"
    assert_equal "$(printf '%s\n' "${lines[@]}" | jq -r .id)" "$(cat "$D/ids" "$D/by-due")"
    run --separate-stderr workq-queue ls q
    assert_equal "${#lines[@]}" 50
    run --separate-stderr workq-queue ls q --state scheduled --limit 600 --json
    assert_equal "$(printf '%s\n' "${lines[@]}" | jq -r .id)" "$(head -600 "$D/by-due")"
}

@test "ls shows a retry that is already due where it will run: after the waiting jobs of its priority" {
    export D
    # A job fails once (retry after 10ms) in a queue that is then paused: the retry comes due
    # but nobody promotes it.
    local retry
    retry=$(workq-enqueue --priority 3 q retry-me)
    start_worker w --max-jobs 1 --backoff 10ms,10ms q -- sh -c 'cat >/dev/null; exit 3'
    wait_exit "$LAST_PID" 10
    workq-queue pause q 2>/dev/null
    local hi lo
    lo=$(workq-enqueue q low)
    hi=$(workq-enqueue --priority 3 q high)
    sleep 0.05
    run --separate-stderr workq-queue ls q --json
    assert_equal "$(jq -r .id <<<"$output" | tr '\n' ' ')" "$hi $retry $lo "
    assert_equal "$(jq -r .state <<<"$output" | sort -u)" waiting
}
