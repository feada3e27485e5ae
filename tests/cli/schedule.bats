#!/usr/bin/env bats
# workq-schedule (CONTRACT.md §11, issue 21): defining, replacing, listing, pausing and removing
# schedules; bad expressions, zones and names refused with exit 2 before anything is written.
# The cron library itself: tests/unit/cron_test.cpp and tests/oracle. Firing by workers: the
# second half of this file.

load ops_helpers

setup() { ops_setup; }
teardown() { ops_teardown; }

RFC3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$'

# schedule_field QUEUE NAME FIELD: a field of the raw schedule record.
schedule_field() { rcli hget "{$WORKQ_NAMESPACE:$1}:schedule:$2" "$3"; }

# namespace_keys: every key of the test's namespace.
namespace_keys() { rcli --scan --pattern "{$WORKQ_NAMESPACE*"; }

# server_s: the test server's clock, epoch seconds.
server_s() { rcli time | head -1; }

# server_after MS: the test server's clock is past MS (epoch milliseconds).
server_after() { [ "$(($(server_s) * 1000))" -gt "$1" ]; }

@test "add, ls, next, rm: the README's fields; stdout carries data only" {
    run --separate-stderr workq-schedule add nightly reports --cron '30 2 * * *' --tz Europe/Berlin -- full
    assert_success
    assert_output ""
    assert_regex "$stderr" "schedule nightly added on queue reports: next tick 20"
    run --separate-stderr workq-schedule add ping pings --cron '@every 1m' </dev/null
    assert_success

    run --separate-stderr workq-schedule ls
    assert_success
    assert_line --index 0 --regexp '^NAME +QUEUE +CRON +TZ +NEXT +LAST JOB +STATE +PAUSED$'
    # By queue, then name.
    assert_line --index 1 --regexp '^ping +pings +@every 1m +UTC '
    assert_line --index 2 --regexp '^nightly +reports +30 2 \* \* \* +Europe/Berlin +20[0-9-]+T[0-9:]+Z +- +- +no$'

    run --separate-stderr workq-schedule ls reports --json
    assert_success
    [ "${#lines[@]}" -eq 1 ]
    jq -e '.name == "nightly" and .queue == "reports" and .cron == "30 2 * * *" and
        .tz == "Europe/Berlin" and .last_job == null and .last_job_state == null and
        .paused == false and .catch_up == "latest" and .priority == 0 and .max_attempts == 10 and
        .timeout == null and .unique == null and .payload_bytes == 4' <<<"$output"
    next=$(jq -r .next <<<"$output")
    [[ $next =~ $RFC3339 ]]
    # 02:30 in Berlin is 00:30 or 01:30 UTC, depending on the season.
    [[ $next =~ T0[01]:30:00(\.000)?Z$ ]]

    run --separate-stderr workq-schedule next nightly --count 3
    assert_success
    [ "${#lines[@]}" -eq 3 ]
    for line in "${lines[@]}"; do [[ $line =~ $RFC3339 ]] || fail "not RFC 3339: $line"; done
    [[ ${lines[0]} < ${lines[1]} && ${lines[1]} < ${lines[2]} ]]
    run workq-schedule next ping
    assert_success
    [ "${#lines[@]}" -eq 5 ]
    # @every 1m: on the minute, a minute apart.
    [[ ${lines[0]} =~ :00Z$ ]]
    a=$(date -d "${lines[0]}" +%s) b=$(date -d "${lines[1]}" +%s)
    [ $((b - a)) -eq 60 ]
    [ "$a" -gt "$(server_s)" ]

    # The front door runs it too.
    run workq schedule ls pings --json
    assert_success
    [ "$(jq -r .name <<<"$output")" = ping ]

    run --separate-stderr workq-schedule rm nightly ping
    assert_success
    assert_output ""
    run workq-schedule ls
    assert_output ""
    [ -z "$(namespace_keys | grep schedule)" ]
}

@test "add: the job options and the payload are kept; stdin is the payload when no argument" {
    workq-schedule add a q --cron '@daily' --priority 7 --max-attempts 3 --timeout 90s \
        --unique report --catch-up none -- 'payload with spaces' 2>/dev/null
    [ "$(schedule_field q a payload)" = 'payload with spaces' ]
    [ "$(schedule_field q a prio)" = 7 ]
    [ "$(schedule_field q a max)" = 3 ]
    [ "$(schedule_field q a timeout)" = 90000 ]
    [ "$(schedule_field q a unique)" = report ]
    [ "$(schedule_field q a catch_up)" = none ]
    run workq-schedule ls --json
    jq -e '.priority == 7 and .max_attempts == 3 and .timeout == "1m30s" and
        .unique == "report" and .catch_up == "none" and .payload_bytes == 19' <<<"$output"

    # All of stdin, bytes exactly (newlines and a NUL included).
    printf 'line one\nline two\n\0binary' | workq-schedule add b q --cron '@hourly' 2>/dev/null
    [ "$(rcli hstrlen "{$WORKQ_NAMESPACE:q}:schedule:b" payload)" = 25 ]
    [ "$(rcli --raw hget "{$WORKQ_NAMESPACE:q}:schedule:b" payload | head -2)" = "line one
line two" ]
    # Neither an argument nor stdin: empty.
    workq-schedule add c q --cron '@hourly' </dev/null 2>/dev/null
    [ "$(rcli hstrlen "{$WORKQ_NAMESPACE:q}:schedule:c" payload)" = 0 ]
}

@test "add of an existing name replaces it: the same expression keeps its next tick and its pause" {
    workq-schedule add r q --cron '0 3 * * *' -- one 2>/dev/null
    first_next=$(schedule_field q r next)
    workq-schedule pause r 2>/dev/null
    # Run again from configuration management, with another payload.
    run --separate-stderr workq-schedule add r q --cron '0 3 * * *' -- two
    assert_success
    assert_regex "$stderr" "schedule r replaced on queue q: paused"
    [ "$(schedule_field q r payload)" = two ]
    [ "$(schedule_field q r next)" = "$first_next" ]
    [ "$(schedule_field q r paused)" = 1 ]
    [ "$(schedule_field q r gen)" = 2 ]
    workq-schedule resume r 2>/dev/null
    # Another expression: a new next tick.
    workq-schedule add r q --cron '0 4 * * *' -- two 2>/dev/null
    [ "$(schedule_field q r next)" = "$((first_next + 3600000))" ] ||
        [ "$(schedule_field q r next)" = "$((first_next + 3600000 - 86400000))" ]
    # Another queue: it moves (one schedule of the name in the namespace).
    run --separate-stderr workq-schedule add r other --cron '0 4 * * *'
    assert_success
    assert_regex "$stderr" "schedule r moved from queue q to other"
    run workq-schedule ls --json
    [ "${#lines[@]}" -eq 1 ]
    [ "$(jq -r .queue <<<"$output")" = other ]
    [ "$(rcli exists "{$WORKQ_NAMESPACE:q}:schedule:r")" = 0 ]
    [ "$(rcli zcard "{$WORKQ_NAMESPACE:q}:ticks")" = 0 ]
}

@test "pause and resume: ls shows it; resume continues from the next tick after now" {
    workq-schedule add p q --cron '@every 1s' 2>/dev/null
    run --separate-stderr workq-schedule pause p
    assert_success
    assert_regex "$stderr" "schedule p paused"
    run workq-schedule ls --json
    jq -e '.paused == true and .next == null' <<<"$output"
    run workq-schedule ls
    assert_line --index 1 --regexp ' +- +- +- +yes$'
    [ "$(rcli zcard "{$WORKQ_NAMESPACE:q}:ticks")" = 0 ]
    run --separate-stderr workq-schedule pause p
    assert_success
    assert_regex "$stderr" "already paused"
    # Paused for a few ticks: resume starts after now, not from the old tick.
    old=$(schedule_field q p next)
    wait_until 10 server_after "$((old + 2000))"
    run --separate-stderr workq-schedule resume p
    assert_success
    assert_regex "$stderr" "schedule p resumed: next tick"
    [ "$(schedule_field q p next)" -gt "$(($(server_s) * 1000 - 1000))" ]
    [ "$(rcli zcard "{$WORKQ_NAMESPACE:q}:ticks")" = 1 ]
    run workq-schedule ls --json
    jq -e '.paused == false and .next != null' <<<"$output"
}

@test "rm, pause, resume, next: unknown or malformed names are reported, the others processed, exit 1" {
    workq-schedule add known q --cron '@hourly' 2>/dev/null
    workq-schedule add other q --cron '@hourly' 2>/dev/null
    run --separate-stderr workq-schedule pause nope known 'bad name'
    assert_failure 1
    assert_regex "$stderr" "cannot pause nope: no such schedule"
    assert_regex "$stderr" "'bad name' \(invalid name"
    [ "$(schedule_field q known paused)" = 1 ]
    run --separate-stderr workq-schedule resume nope known
    assert_failure 1
    [ -z "$(schedule_field q known paused)" ]
    run --separate-stderr workq-schedule rm known nope other
    assert_failure 1
    assert_regex "$stderr" "cannot remove nope: no such schedule"
    run workq-schedule ls
    assert_output ""
    run --separate-stderr workq-schedule next nope
    assert_failure 1
    assert_regex "$stderr" "no such schedule: nope"
}

@test "bad input: every malformed expression, zone, name and option is exit 2 naming it, nothing written" {
    check() {
        local expected=$1
        shift
        run --separate-stderr workq-schedule "$@"
        [ "$status" -eq 2 ] || fail "workq-schedule $* exited $status: $stderr"
        [[ $stderr == *"$expected"* ]] || fail "workq-schedule $*: '$stderr' lacks '$expected'"
        assert_output ""
    }
    check "the minute field '60': 60 is out of range 0-59" add s q --cron '60 * * * *'
    check "the hour field '24'" add s q --cron '0 24 * * *'
    check "the day-of-month field '0'" add s q --cron '0 0 0 * *'
    check "the month field 'foo'" add s q --cron '0 0 * foo *'
    check "the day-of-week field '8'" add s q --cron '0 0 * * 8'
    check "the minute field '5-2': the range 5-2 runs backwards" add s q --cron '5-2 * * * *'
    check "a step of 0 never advances" add s q --cron '*/0 * * * *'
    check "4 fields" add s q --cron '* * * *'
    check "unknown '@reboot'" add s q --cron '@reboot'
    check "@every: the period must be whole seconds" add s q --cron '@every 1500ms'
    check "it never fires" add s q --cron '0 0 30 2 *'
    check "invalid time zone 'Mars/Olympus': not in the IANA time zone database" \
        add s q --cron '@daily' --tz Mars/Olympus
    check "invalid time zone '../../etc/passwd'" add s q --cron '@daily' --tz ../../etc/passwd
    check "invalid schedule name 'a b'" add 'a b' q --cron '@daily'
    check "invalid schedule name '.x'" add .x q --cron '@daily'
    check "is longer than 189 characters" add "$(printf 'n%.0s' {1..190})" q --cron '@daily'
    check "invalid queue name" add s 'a:b' --cron '@daily'
    check "--catch-up: 'sometimes' is neither latest nor none" add s q --cron '@daily' --catch-up sometimes
    check "--priority" add s q --cron '@daily' --priority 2000000
    check "--max-attempts: 0 is less than 1" add s q --cron '@daily' --max-attempts 0
    check "--timeout: invalid duration" add s q --cron '@daily' --timeout 5x
    check "--cron is required" add s q
    check "one payload" add s q --cron '@daily' -- a b
    check "--count: 0 is out of range" next s --count 0
    check "invalid schedule name" next 'x y'
    head -c 1100000 /dev/zero | tr '\0' x >"$D/big"
    check "over the limit of 1048576 bytes" add s q --cron '@daily' <"$D/big"
    [ -z "$(namespace_keys)" ] || fail "keys written: $(namespace_keys)"
}

# ---- firing: workers make one job per tick ------------------------------------------------------

# recorder: a handler that appends its job's id to $D/ledger.
recorder() {
    make_handler recorder <<'HANDLER'
echo "$WORKQ_JOB_ID" >>"$D/ledger"
HANDLER
}

# tick_jobs QUEUE NAME: the tick (epoch seconds) of every job of schedule NAME, sorted.
tick_jobs() {
    rcli --scan --pattern "{$WORKQ_NAMESPACE:$1}:job:$2.*" | sed 's/.*\.//' | sort -n
}

# tick_job_count QUEUE NAME: how many jobs schedule NAME made.
tick_job_count() { tick_jobs "$1" "$2" | wc -l; }
tick_jobs_at_least() { [ "$(tick_job_count "$1" "$2")" -ge "$3" ]; }

# ledger_has N: the handlers ran at least N jobs.
ledger_has() { [ -f "$D/ledger" ] && [ "$(wc -l <"$D/ledger")" -ge "$1" ]; }

# assert_consecutive QUEUE NAME: the schedule's jobs are one per second, no gap, none twice.
assert_consecutive() {
    local ticks first last count
    ticks=$(tick_jobs "$1" "$2")
    first=$(head -1 <<<"$ticks")
    last=$(tail -1 <<<"$ticks")
    count=$(wc -l <<<"$ticks")
    [ "$(sort -u <<<"$ticks" | wc -l)" -eq "$count" ] || fail "a tick twice: $ticks"
    [ $((last - first + 1)) -eq "$count" ] || fail "ticks missing between $first and $last: $(echo $ticks)"
}

# job_for QUEUE NAME EPOCH: schedule NAME made a job for that tick.
job_for() { [ "$(rcli exists "{$WORKQ_NAMESPACE:$1}:job:$2.$3")" = 1 ]; }

# stop_workers: SIGTERM to every worker started, and wait for each to exit.
stop_workers() {
    local pid
    for pid in "${WORKER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${WORKER_PIDS[@]}"; do wait_exit "$pid" 30 || true; done
}

@test "exactly once: @every 1s on a queue served by 5 workers makes one job per second, ids consecutive" {
    export D
    h=$(recorder)
    workq-schedule add tick q --cron '@every 1s' </dev/null 2>/dev/null
    for i in 1 2 3 4 5; do start_worker "w$i" q -- "$h"; done
    wait_until 40 ledger_has 10
    stop_workers
    assert_consecutive q tick
    [ "$(tick_job_count q tick)" -ge 10 ]
    # Each job ran once, and every job made was run.
    [ "$(sort "$D/ledger" | uniq -d)" = "" ] || fail "ran twice: $(sort "$D/ledger" | uniq -d)"
    [ "$(sort -u "$D/ledger" | wc -l)" -eq "$(tick_job_count q tick)" ]
    # A job is a job like any other: payload, options, and the schedule's last job.
    last=$(tick_jobs q tick | tail -1)
    run workq-schedule ls --json
    [ "$(jq -r .last_job <<<"$output")" = "tick.$last" ]
    [ "$(jq -r .last_job_state <<<"$output")" = succeeded ]
}

@test "exactly once with workers killed (kill -9) and restarted meanwhile" {
    export D
    h=$(recorder)
    workq-schedule add tick q --cron '@every 1s' </dev/null 2>/dev/null
    for i in 1 2 3 4 5; do start_worker "w$i" q -- "$h"; done
    wait_until 30 tick_jobs_at_least q tick 2
    for round in 1 2 3; do
        victim=${WORKER_PIDS[$((round - 1))]}
        kill -9 "$victim"
        wait_until 10 process_gone "$victim"
        start_worker "again$round" q -- "$h"
        seen=$(tick_job_count q tick)
        wait_until 20 tick_jobs_at_least q tick $((seen + 2))
    done
    wait_until 20 tick_jobs_at_least q tick $(($(tick_job_count q tick) + 2))
    stop_workers
    assert_consecutive q tick
    [ "$(tick_job_count q tick)" -ge 10 ]
}

# missed_ticks MODE: a schedule misses ticks while no worker runs, then one starts. Sets FIRST and
# LAST (epoch seconds) of the missed ticks, from the worker's log.
missed_ticks() {
    export D
    h=$(recorder)
    workq-schedule add m q --cron '@every 1s' --catch-up "$1" </dev/null 2>/dev/null
    first_tick=$(schedule_field q m next)
    wait_until 20 server_after $((first_tick + 5000))
    start_worker w q -- "$h"
    wait_until 20 log_has w "fell while no worker served the queue"
    line=$(grep -h 'fell while no worker served the queue' "$D/w.log")
    [[ $line =~ ([0-9]+)\ tick\(s\)\ from\ ([^ ]+)\ to\ ([^ ]+)\ fell ]] || fail "$line"
    COUNT=${BASH_REMATCH[1]}
    FIRST=$(date -d "${BASH_REMATCH[2]}" +%s)
    LAST=$(date -d "${BASH_REMATCH[3]}" +%s)
    [ "$FIRST" -eq $((first_tick / 1000)) ]
    [ "$COUNT" -ge 5 ]
    [ $((LAST - FIRST + 1)) -eq "$COUNT" ]
    # The ticks after the worker started fire as usual.
    wait_until 20 job_for q m $((LAST + 2))
    stop_workers
}

@test "missed ticks: no worker for 5 ticks, then one starts: one job, for the latest (--catch-up latest, the default)" {
    missed_ticks latest
    for ((t = FIRST; t < LAST; t++)); do ! job_for q m "$t" || fail "a job for missed tick $t"; done
    job_for q m "$LAST"
    assert_log w "--catch-up latest: one job, for the latest"
    # From the latest missed tick on, one job per tick.
    assert_consecutive q m
}

@test "missed ticks: --catch-up none makes no job for them" {
    missed_ticks none
    for ((t = FIRST; t <= LAST; t++)); do ! job_for q m "$t" || fail "a job for missed tick $t"; done
    assert_log w "--catch-up none: no job for them"
    [ "$(tick_jobs q m | head -1)" -gt "$LAST" ]
    assert_consecutive q m
}

# firing_every_second NAME: schedule NAME on q every second, a worker running its jobs
# (recorded), and two ticks fired.
firing_every_second() {
    export D
    local h
    h=$(recorder)
    workq-schedule add "$1" q --cron '@every 1s' </dev/null 2>/dev/null
    start_worker w q -- "$h"
    wait_until 20 tick_jobs_at_least q "$1" 2
}

# stop_firing COMMAND NAME: `workq-schedule COMMAND NAME` (pause, rm); STOPPED_AT is the
# server's second just after it, and 3 s of server time pass after that.
stop_firing() {
    workq-schedule "$1" "$2" 2>/dev/null
    STOPPED_AT=$(server_s)
    wait_until 20 server_after $(((STOPPED_AT + 3) * 1000))
}

@test "pause stops firing; resume continues from the next tick, without the ticks missed meanwhile" {
    firing_every_second p
    stop_firing pause p
    local paused_at=$STOPPED_AT
    # At most the tick in progress when pause ran.
    [ "$(tick_jobs q p | tail -1)" -le $((paused_at + 1)) ] || fail "fired while paused: $(tick_jobs q p | tail -1)"
    # The tick after resume is after the time resume reads, so after this one.
    resumed_at=$(server_s)
    workq-schedule resume p 2>/dev/null
    wait_until 20 job_for q p $((resumed_at + 3))
    stop_workers
    for ((t = paused_at + 2; t <= resumed_at; t++)); do ! job_for q p "$t" || fail "a job for tick $t, while paused"; done
}

@test "rm while a worker fires: at most the tick in progress, then nothing" {
    firing_every_second r
    stop_firing rm r
    local removed_at=$STOPPED_AT
    [ "$(tick_jobs q r | tail -1)" -le $((removed_at + 1)) ]
    [ "$(rcli exists "{$WORKQ_NAMESPACE:q}:schedule:r")" = 0 ]
    [ "$(rcli zcard "{$WORKQ_NAMESPACE:q}:ticks")" = 0 ]
    stop_workers
    # The jobs made before stay, and ran.
    ledger_has 2
}

@test "a schedule added while workers wait idle fires from its first tick (add wakes them)" {
    export D
    h=$(recorder)
    start_worker w q -- "$h"
    wait_until 20 worker_listed_live "$LAST_PID"
    workq-schedule add soon q --cron '@every 3s' </dev/null 2>/dev/null
    first=$(($(schedule_field q soon next) / 1000))
    # Idle, the worker waits on the server: add wakes it and it sets its timer for the tick.
    wait_until 20 job_for q soon "$first"
    wait_until 20 job_for q soon $((first + 3))
    ! log_has w "fell while no worker served the queue"
}

@test "a schedule holding a number workq never writes fires nothing, is named once, the others fire; add mends it (issue 23 item 2)" {
    export D
    h=$(recorder)
    workq-schedule add good q --cron '@every 1s' </dev/null 2>/dev/null
    workq-schedule add bad q --cron '@every 1s' </dev/null 2>/dev/null
    rcli hset "{$WORKQ_NAMESPACE:q}:schedule:bad" prio nan >/dev/null
    start_worker w q -- "$h"
    wait_until 40 tick_jobs_at_least q good 5
    [ "$(tick_job_count q bad)" -eq 0 ]
    # Refused unchanged every round (about one a second), said once.
    assert_log w "schedule bad cannot fire: queue q is damaged: {$WORKQ_NAMESPACE:q}:schedule:bad has a prio 'nan' that is not a whole number"
    [ "$(grep -c 'schedule bad cannot fire' "$D/w.log")" -eq 1 ]
    # Defined again, it fires (the same expression keeps its next tick: the ticks since are late, not missed).
    workq-schedule add bad q --cron '@every 1s' </dev/null 2>/dev/null
    wait_until 20 tick_jobs_at_least q bad 1
    stop_workers
}

@test "workq-status: schedules per queue with the next tick; a late tick is a WARNING for --check" {
    use_safe_redis
    workq-schedule add later q --cron '@yearly' </dev/null 2>/dev/null
    run --separate-stderr workq-status --json
    assert_success
    jq -e '.queues[] | select(.name == "q") | .schedules == 1 and .late_schedules == 0 and
        (.next_tick | test("-01-01T00:00:00"))' <<<"$output"
    run --separate-stderr workq-status
    assert_output --partial "q: 1 schedule(s), next tick in "
    run --separate-stderr workq-status --check
    assert_success
    # No worker serves the queue: its tick goes late.
    workq-schedule add late q --cron '@every 1s' </dev/null 2>/dev/null
    next=$(schedule_field q late next)
    wait_until 30 server_after $((next + 11000))
    run --separate-stderr workq-status --check
    assert_failure 1
    assert_output --partial "WARNING: q: 1 schedule(s) late: no worker fires their ticks"
    run --separate-stderr workq-status --json
    jq -e '.queues[] | select(.name == "q") | .schedules == 2 and .late_schedules == 1' <<<"$output"
    run --separate-stderr workq-status
    assert_output --partial "1 late: no worker of the queue fires them"
    run --separate-stderr workq-status --prometheus
    assert_output --partial "workq_queue_schedules_late{namespace=\"$WORKQ_NAMESPACE\",queue=\"q\"} 1"
    run workq-schedule ls q
    assert_output --regexp "late +q +@every 1s +UTC +[0-9T:-]+Z \(late [0-9]+s\)"
    # A worker fires it (one job, for the latest missed tick): no longer late.
    export D
    start_worker w q -- "$(recorder)"
    wait_until 20 tick_jobs_at_least q late 1
    wait_until 20 bash -c '[ "$(workq-status --check >/dev/null 2>&1; echo $?)" = 0 ]'
    stop_workers
}

@test "a tick's job id is unique in the namespace: a job with that id in another queue means no job here" {
    export D
    workq-schedule add s q --cron '@every 1s' </dev/null 2>/dev/null
    first=$(($(schedule_field q s next) / 1000))
    taken=$((first + 6)) lapsed=$((first + 8))
    # Somebody made the ids of two future ticks in another queue (workq-enqueue --id). The
    # first's reservation still holds; the second's has lapsed (deleted here, as 15 s would):
    # the worker finds that job by looking in the other queues.
    workq-enqueue -q other --id "s.$taken" elsewhere >/dev/null
    workq-enqueue -q other --id "s.$lapsed" elsewhere >/dev/null
    rcli del "{$WORKQ_NAMESPACE}:id:s.$lapsed" >/dev/null
    start_worker w q -- "$(recorder)"
    wait_until 30 job_for q s $((lapsed + 2))
    stop_workers
    for t in "$taken" "$lapsed"; do
        ! job_for q s "$t" || fail "tick $t made a second job s.$t, in queue q"
        job_for other s "$t"
        assert_log w "tick $(date -u -d @"$t" +%Y-%m-%dT%H:%M:%S).000Z: no job here, job s.$t is made or being made in queue other"
        # The ticks around it made their jobs.
        job_for q s $((t - 1))
        job_for q s $((t + 1))
    done
    # The reservation taken for the lapsed one was given back.
    [ -z "$(rcli get "{$WORKQ_NAMESPACE}:id:s.$lapsed")" ]
    # The others made their jobs under this queue's reservation.
    [ "$(rcli get "{$WORKQ_NAMESPACE}:id:s.$((lapsed + 1))")" = q ]
}
