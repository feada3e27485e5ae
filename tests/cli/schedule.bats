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
