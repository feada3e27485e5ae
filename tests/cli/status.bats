#!/usr/bin/env bats
# workq-status (CONTRACT.md §7, issue 8): the default view, --json (the contract's document, every
# key with its type), --prometheus (promtool check metrics), --watch at a terminal, `job ID...`
# in every state, --check thresholds and exit codes, worker liveness (kill -9, LOST once the
# heartbeat lapses), server warnings, a cost independent of queue length, and an ACL user
# without KEYS, SCAN, CONFIG, FLUSH* or DEBUG.

load ops_helpers

# One cluster for the file when WORKQ_TEST_TOPOLOGY=cluster (helpers.bash).
setup_file() { workq_test_setup_file; }
teardown_file() { workq_test_teardown_file; }

setup() {
    ops_setup
    TMUX_SOCKET=""
}

teardown() {
    [ -n "$TMUX_SOCKET" ] && tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null
    ops_teardown
}

RFC3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'

# sleeper: a handler that records its pid and sleeps (the job stays running).
sleeper() {
    make_handler sleeper <<'EOF'
cat >/dev/null
echo $$ >>"$D/sleeper.pid"
exec sleep 60
EOF
}

# A namespace with something in every column: q1 has 3 waiting and 1 scheduled jobs; q2 one
# dead letter (1 failed attempt) and one success; `busy` one job running in worker "viewer"
# (-c 2), whose pid is $VIEWER.
make_fixture() {
    export D
    workq-enqueue q1 a b c >/dev/null
    workq-enqueue --delay 1h q1 later >/dev/null
    workq-enqueue --max-attempts 1 q2 bad >/dev/null
    workq-enqueue q2 good >/dev/null
    start_worker q2 --burst q2 -- sh -c '[ "$(cat)" = good ] || exit 3'
    wait_exit "$LAST_PID" 20
    start_worker viewer --name viewer -c 2 busy -- "$(sleeper)"
    VIEWER=$LAST_PID
    RUNNING_ID=$(workq-enqueue busy sleepy)
    wait_until 10 test -s "$D/sleeper.pid"
    # The registry learns of the busy slot at the next heartbeat (every 5s) or change of state:
    # SIGTSTP and SIGCONT make two changes at once.
    kill -TSTP "$VIEWER"
    wait_until 10 worker_field_is "$VIEWER" state paused
    kill -CONT "$VIEWER"
    wait_until 10 worker_field_is "$VIEWER" state running
    assert_equal "$(worker_field "$VIEWER" busy)" 1
}

# column FIELD-NUMBER KEY: the field of the line whose first field is KEY, in $output.
column() { awk -v k="$2" -v f="$1" '$1 == k { print $f }' <<<"$output"; }

# ---- output modes ------------------------------------------------------------------------------

# bats test_tags=cluster
@test "default view: the server, every queue's counts, every worker with its health; no colour when not a terminal" {
    make_fixture
    run --separate-stderr workq-status
    assert_success
    # On a cluster (WORKQ_TEST_TOPOLOGY), the seed list with its database.
    local url="unix://$WORKQ_TEST_REDIS_SOCKET"
    [ "$WORKQ_TEST_TOPOLOGY" != cluster ] || url="$WORKQ_REDIS_URL/0"
    assert_line --index 0 --regexp "^server: $url  redis [0-9.]+  namespace $WORKQ_NAMESPACE$"
    assert_line --regexp '^QUEUE +WAITING +SCHEDULED +RUNNING +DEAD +SUCCEEDED +FAILED +PER-MIN +OLDEST +PAUSED +LIMITS$'
    assert_equal "$(column 2 q1) $(column 3 q1) $(column 4 q1) $(column 5 q1) $(column 6 q1) $(column 7 q1) $(column 8 q1) $(column 10 q1)" "3 1 0 0 0 0 0 no"
    assert_regex "$(column 9 q1)" '^[0-9.]+s$'
    # q2's one success just happened: it is the recent throughput (PER-MIN).
    assert_equal "$(awk '$1 == "q2"' <<<"$output" | tr -s ' ')" "q2 0 0 0 1 1 1 1 - no -"
    assert_equal "$(awk '$1 == "busy"' <<<"$output" | tr -s ' ')" "busy 0 0 1 0 0 0 0 - no -"
    assert_line --regexp '^WORKER +NAME +HOST +PID +STATE +QUEUES +BUSY +PROCESSED +FAILED +UPTIME +HEARTBEAT +LIVE$'
    local row
    row=$(grep -E " viewer " <<<"$output" | tr -s ' ')
    assert_regex "$row" "^[A-Za-z0-9]+ viewer $(hostname) $VIEWER running busy 1/2 0 0 [0-9.]+s (just now|[0-9]+s ago) live$"
    [[ "$output" != *$'\e'* ]] || fail "colour escapes in output that is not a terminal"
    # QUEUE... scopes the view.
    run --separate-stderr workq-status q2
    assert_success
    assert_line --regexp '^q2 '
    refute_line --regexp '^q1 '
}

@test "colour only at a terminal, and not with NO_COLOR" {
    command -v script >/dev/null || skip "script(1) is not installed"
    make_fixture
    run script -qec "workq-status" /dev/null
    assert_success
    [[ "$output" == *$'\e['* ]] || fail "no colour at a terminal: $output"
    run env NO_COLOR=1 script -qec "workq-status" /dev/null
    assert_success
    [[ "$output" != *$'\e'* ]] || fail "colour despite NO_COLOR"
    assert_output --partial "viewer"
}

# bats test_tags=cluster
@test "--json: the contract's document, every key present with its type" {
    make_fixture
    run --separate-stderr workq-status --json
    assert_success
    assert_equal "${#lines[@]}" 1
    assert_json "$output" '(keys | contains(["server", "queues", "workers"]))
        and (.server | (.url|type)=="string" and (.embedded|type)=="boolean"
            and (.redis_version|test("^[0-9]+\\.")) and .namespace=="'"$WORKQ_NAMESPACE"'"
            and (.time|type)=="string" and (.warnings|type)=="array")
        and (.queues|type)=="array" and (.workers|type)=="array"'
    assert_json "$output" '.queues | length == 3 and all(
        (keys | contains(["name","waiting","scheduled","running","dead","succeeded","failed",
                          "paused","oldest_waiting_age_s","dead_trimmed","succeeded_last_minute"]))
        and (.name|type)=="string"
        and ([.waiting,.scheduled,.running,.dead,.succeeded,.failed,.dead_trimmed,.succeeded_last_minute]
             | all(type=="number" and . >= 0 and . == floor))
        and (.paused|type)=="boolean"
        and ((.oldest_waiting_age_s|type)=="number" or .oldest_waiting_age_s==null))'
    assert_json "$output" '.workers | length == 1 and all(
        (keys | contains(["id","name","host","pid","state","queues","busy","concurrency",
                          "processed","failed","started_at","last_heartbeat","live"]))
        and ([.id,.name,.host,.state,.started_at,.last_heartbeat] | all(type=="string"))
        and ([.pid,.busy,.concurrency,.processed,.failed] | all(type=="number"))
        and (.queues|type)=="array" and (.queues|all(type=="string")) and (.live|type)=="boolean")'
    # The values a user would look for.
    assert_json "$output" '[.queues[] | {(.name): [.waiting,.scheduled,.running,.dead,.succeeded,.failed,.paused]}] | add
        == {"busy": [0,0,1,0,0,0,false], "q1": [3,1,0,0,0,0,false], "q2": [0,0,0,1,1,1,false]}'
    assert_json "$output" '(.queues[] | select(.name=="q1") | .oldest_waiting_age_s >= 0)
        and (.queues[] | select(.name=="q2") | .oldest_waiting_age_s == null)'
    assert_json "$output" '.workers[0] | .name=="viewer" and .pid=='"$VIEWER"' and .state=="running"
        and .queues==["busy"] and .busy==1 and .concurrency==2 and .live==true'
    assert_regex "$(jq -r '.workers[0].started_at' <<<"$output")" "$RFC3339"
    assert_regex "$(jq -r '.workers[0].last_heartbeat' <<<"$output")" "$RFC3339"
    assert_regex "$(jq -r '.server.time' <<<"$output")" "$RFC3339"
}

@test "--prometheus: promtool check metrics passes; the figures match" {
    if ! command -v promtool >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends \
            prometheus >/dev/null 2>&1 || true
    fi
    command -v promtool >/dev/null ||
        skip "promtool is missing and could not be installed (Debian package prometheus; scripts/setup installs it)"
    make_fixture
    workq-status --prometheus >"$D/metrics" 2>/dev/null
    run promtool check metrics <"$D/metrics"
    assert_success
    assert_output ""
    local ns=$WORKQ_NAMESPACE
    run cat "$D/metrics"
    assert_line "workq_queue_waiting{namespace=\"$ns\",queue=\"q1\"} 3"
    assert_line "workq_queue_scheduled{namespace=\"$ns\",queue=\"q1\"} 1"
    assert_line "workq_queue_dead{namespace=\"$ns\",queue=\"q2\"} 1"
    assert_line "workq_queue_succeeded_total{namespace=\"$ns\",queue=\"q2\"} 1"
    assert_line "workq_queue_failed_total{namespace=\"$ns\",queue=\"q2\"} 1"
    assert_line "workq_queue_running{namespace=\"$ns\",queue=\"busy\"} 1"
    assert_line "workq_workers{namespace=\"$ns\",liveness=\"live\"} 1"
    assert_line --regexp "^workq_worker_busy\{namespace=\"$ns\",worker=\"[^\"]+\",name=\"viewer\",state=\"running\"\} 1$"
    assert_line "# TYPE workq_queue_succeeded_total counter"
    assert_line --regexp '^# HELP workq_queue_waiting .+'
}

@test "a damaged queue is named, the others shown as usual, in every mode; exit 1; --check CRITICAL" {
    # Issue 23, item 2: `SET '{workq:q1}:meta' x` made workq-status fail for every queue.
    workq-enqueue q0 a b >/dev/null
    workq-enqueue q1 c >/dev/null
    workq-enqueue q2 d >/dev/null
    rcli del "{$WORKQ_NAMESPACE:q1}:meta" >/dev/null
    rcli set "{$WORKQ_NAMESPACE:q1}:meta" x >/dev/null
    rcli set "{$WORKQ_NAMESPACE:q2}:waiting:0" x >/dev/null
    local what1="{$WORKQ_NAMESPACE:q1}:meta holds a string where workq keeps a hash"
    local what2="{$WORKQ_NAMESPACE:q2}:waiting:0 holds a string where workq keeps a list"

    run --separate-stderr workq-status
    assert_failure 1
    assert_equal "$(column 2 q0)" 2
    assert_equal "$(column 2 q1)" damaged
    assert_equal "$(column 2 q2)" damaged
    assert_line "q1: damaged: $what1 (README, \"Damaged data\")"
    [[ "$stderr" == *"queue q1 is damaged: $what1"* ]] || fail "stderr: $stderr"
    [[ "$stderr" == *"queue q2 is damaged: $what2"* ]] || fail "stderr: $stderr"

    run --separate-stderr workq-status --json
    assert_failure 1
    assert_json "$output" '[.queues[] | {(.name): [.waiting, .damaged]}] | add
        == {"q0": [2, null], "q1": [null, "'"$what1"'"], "q2": [null, "'"$what2"'"]}'

    run --separate-stderr workq-status --prometheus
    assert_failure 1
    assert_line "workq_queue_damaged{namespace=\"$WORKQ_NAMESPACE\",queue=\"q1\"} 1"
    assert_line "workq_queue_damaged{namespace=\"$WORKQ_NAMESPACE\",queue=\"q0\"} 0"
    assert_line "workq_queue_waiting{namespace=\"$WORKQ_NAMESPACE\",queue=\"q0\"} 2"
    refute_line --partial "workq_queue_waiting{namespace=\"$WORKQ_NAMESPACE\",queue=\"q1\"}"

    run --separate-stderr workq-status --check --no-server-warnings q0
    assert_success
    run --separate-stderr workq-status --check --no-server-warnings
    assert_failure 2
    assert_output --partial "WORKQ CRITICAL: q1: damaged: $what1"

    # A job of a damaged record: shown with what can be read, named, exit 1.
    local bad
    bad=$(workq-enqueue q0 e)
    rcli hset "{$WORKQ_NAMESPACE:q0}:job:$bad" prio nan >/dev/null
    run --separate-stderr workq-status job "$bad"
    assert_failure 1
    assert_line --partial "damaged: the job record's prio 'nan' is not a whole number"
    [[ "$stderr" == *"job $bad in queue q0 is damaged"* ]] || fail "stderr: $stderr"

    # The workers' registry of the wrong type: the queues are still shown.
    rcli set "{$WORKQ_NAMESPACE}:workers" x >/dev/null
    run --separate-stderr workq-status q0
    assert_failure 1
    assert_equal "$(column 2 q0)" 3
    assert_line --partial "workers: damaged: {$WORKQ_NAMESPACE}:workers holds another type"
}

@test "--watch at a terminal refreshes, quits on q and on Ctrl-C, and gives the terminal back as it was" {
    command -v tmux >/dev/null || skip "tmux is not installed (scripts/setup installs it)"
    workq-enqueue q one >/dev/null
    cat >"$D/watch.sh" <<EOF
echo before-watch
stty -g >"$D/stty.before"
workq-status --watch=200ms q
echo \$? >"$D/rc1"
stty -g >"$D/stty.after1"
workq-status --watch=200ms q
echo \$? >"$D/rc2"
stty -g >"$D/stty.after2"
sleep 60
EOF
    TMUX_SOCKET="workq-test-$BATS_TEST_NUMBER-$$"
    tmux -L "$TMUX_SOCKET" -f /dev/null new-session -d -x 160 -y 40 "bash $D/watch.sh"
    pane() { tmux -L "$TMUX_SOCKET" capture-pane -p; }
    pane_has() { pane | grep -qE -- "$1"; }
    wait_until 10 pane_has 'refreshing every 200ms; q or Ctrl-C quits' || fail "no view: $(pane)"
    pane_has '^q +1 +0 +0 +0 ' || fail "no queue row: $(pane)"
    # It refreshes: two more jobs show up without a key pressed.
    workq-enqueue q two three >/dev/null
    wait_until 5 pane_has '^q +3 +0 +0 +0 ' || fail "the view did not refresh: $(pane)"
    # Only queues that moved are in the throughput line.
    wait_until 5 pane_has 'succeeded per second: none'

    tmux -L "$TMUX_SOCKET" send-keys q
    wait_until 5 test -s "$D/rc1" || fail "q did not quit: $(pane)"
    assert_equal "$(cat "$D/rc1")" 0
    assert_equal "$(cat "$D/stty.after1")" "$(cat "$D/stty.before")"
    # The second run is on screen meanwhile; Ctrl-C ends it the same way.
    wait_until 10 pane_has 'refreshing every' || fail "no second view: $(pane)"
    tmux -L "$TMUX_SOCKET" send-keys C-c
    wait_until 5 test -s "$D/rc2" || fail "Ctrl-C did not quit: $(pane)"
    assert_equal "$(cat "$D/rc2")" 0
    assert_equal "$(cat "$D/stty.after2")" "$(cat "$D/stty.before")"
    # The screen the user had is back: the view was on the alternate screen.
    wait_until 5 pane_has before-watch
    pane_has 'refreshing every' && fail "the view is still on screen: $(pane)"
    return 0
}

@test "--watch fits a 70x20 terminal: no line wraps, the header stays, hidden queues are counted" {
    command -v tmux >/dev/null || skip "tmux is not installed (scripts/setup installs it)"
    export D
    local i
    # 30 queues of one waiting job each, made as workq-enqueue makes them (the queue registered,
    # then the enqueue script) in one redis-cli pipe: 30 starts of the sanitized tool took ~5 s
    # of CPU.
    local sha queue
    sha=$(script_sha enqueue)
    for i in $(seq -w 1 30); do
        queue="queue-with-a-long-name-$i"
        echo "SADD {$WORKQ_NAMESPACE}:queues $queue"
        echo "EVALSHA $sha 1 {$WORKQ_NAMESPACE:$queue}:meta {$WORKQ_NAMESPACE:$queue}: 0 10 \"\" 0 \"\" \"\" generated 0 \"\" j1 x"
    done | rcli --pipe >/dev/null
    start_worker w --name a-worker-with-a-rather-long-name queue-with-a-long-name-01 -- cat
    wait_until 10 eval 'workq-status --json | jq -e ".workers[] | select(.live)" >/dev/null'
    TMUX_SOCKET="workq-test-$BATS_TEST_NUMBER-$$"
    tmux -L "$TMUX_SOCKET" -f /dev/null new-session -d -x 70 -y 20 "workq-status --watch=200ms; sleep 60"
    # -J joins a line the terminal wrapped: a wrapped line would show longer than 70.
    pane() { tmux -L "$TMUX_SOCKET" capture-pane -pJ; }
    pane_has() { pane | grep -qE -- "$1"; }
    wait_until 10 pane_has 'q or Ctrl-C quits' || fail "no view: $(pane)"
    wait_until 10 pane_has 'succeeded per second' || fail "no second view: $(pane)"
    local screen
    screen=$(pane)
    echo "$screen" >&3
    # The first line is the server's, the queue table's header is there, and the footer.
    [[ "$(head -1 <<<"$screen")" == "server: "* ]] || fail "the header scrolled away: $screen"
    grep -qE '^QUEUE +WAITING' <<<"$screen" || fail "no queue header: $screen"
    grep -qE '^NAME +STATE' <<<"$screen" || fail "no worker header: $screen"
    grep -qE '^queue-with-a-long-name-01 ' <<<"$screen" || fail "no queue row: $screen"
    grep -q 'q or Ctrl-C quits' <<<"$screen"
    # Every line fits: nothing wrapped.
    local long
    # Characters, not bytes: a cut line ends with the one-character ellipsis.
    long=$(while IFS= read -r line; do
        [ "$(printf '%s' "$line" | LC_ALL=C.UTF-8 wc -m)" -le 70 ] || echo "$line"
    done <<<"$screen")
    [ -z "$long" ] || fail "lines wider than the terminal: $long"
    [ "$(wc -l <<<"$screen")" -le 20 ] || fail "more lines than the terminal has: $screen"
    # The queues that did not fit are counted, not dropped silently.
    grep -qE '\.\.\. [0-9]+ queue\(s\) not shown' <<<"$screen" || fail "hidden queues not counted: $screen"
    # The two counts that looked alike are told apart.
    grep -q 'PROCESSED: jobs a worker ran since it started' <<<"$screen" || fail "$screen"
    # In a pipe the view is whole: every queue.
    run --separate-stderr workq-status
    assert_equal "$(grep -c '^queue-with-a-long-name-' <<<"$output")" 30
}

@test "--watch when stdout is not a terminal prints one view per interval until SIGINT, exit 0" {
    workq-enqueue q one >/dev/null
    workq-status --watch=200ms q >"$D/watch.out" 2>"$D/watch.err" 3>&- &
    local pid=$!
    WORKER_PIDS+=("$pid") # killed by the teardown if the test fails first
    views_at_least() { [ "$(grep -c '^QUEUE' "$D/watch.out")" -ge "$1" ]; }
    wait_until 5 views_at_least 3 || fail "not a view per interval: $(cat "$D/watch.out")"
    kill -INT "$pid"
    local code=0
    wait_until 5 process_gone "$pid" || fail "SIGINT did not end --watch"
    wait "$pid" || code=$?
    assert_equal "$code" 0
    grep -q $'\e' "$D/watch.out" && fail "escapes written to a file"
    run --separate-stderr workq-status --watch=50ms
    assert_failure 2
    # With '=' the value is an interval, never a queue (`--watch q` may be a queue).
    run --separate-stderr timeout 5 workq-status --watch=5x q
    assert_failure 2
    [[ "$stderr" == *"--watch: invalid interval '5x'"* ]] || fail "$stderr"
}

# ---- job ID... ----------------------------------------------------------------------------------

# bats test_tags=cluster
@test "job ID...: every state (scheduled, waiting, running, succeeded, dead, cancelled, unknown), human and --json" {
    export D
    local scheduled waiting running succeeded dead cancelled
    scheduled=$(workq-enqueue --delay 1h q later)
    waiting=$(workq-enqueue --max-attempts 4 q soon)
    cancelled=$(workq-enqueue q doomed)
    workq-queue cancel "$cancelled" >/dev/null
    succeeded=$(workq-enqueue ok hello)
    dead=$(workq-enqueue --max-attempts 1 bad boom)
    start_worker ok --burst ok -- sh -c 'printf "result of %s" "$(cat)"'
    wait_exit "$LAST_PID" 20
    start_worker bad --burst bad -- sh -c 'echo "it broke" >&2; exit 3'
    wait_exit "$LAST_PID" 20
    start_worker run run -- "$(sleeper)"
    running=$(workq-enqueue run slow)
    wait_until 10 state_is run "$running" running

    run --separate-stderr workq-status job "$scheduled" "$waiting" "$running" "$succeeded" \
        "$dead" "$cancelled" nope 'bad/id'
    assert_failure 1
    assert_equal "${#lines[@]}" 10
    assert_line --index 0 --regexp "^$scheduled +scheduled +queue q +attempts 0/10 +runs in [0-9]+m"
    assert_line --index 1 --regexp "^$waiting +waiting +queue q +attempts 0/4$"
    assert_line --index 2 --regexp "^$running +running +queue run +attempts 1/10 +worker [A-Za-z0-9]+$"
    assert_line --index 3 --regexp "^$succeeded +succeeded +queue ok +attempts 1/10 +ended "
    assert_line --index 4 '  result: result of hello'
    assert_line --index 5 --regexp "^$dead +dead +queue bad +attempts 1/1 +ended "
    assert_line --index 6 --regexp '^  error: it broke'
    assert_line --index 7 --regexp "^$cancelled +cancelled +queue q +attempts 0/10 +ended "
    assert_line --index 8 "nope  unknown"
    assert_line --index 9 "bad/id  unknown"
    assert_regex "$stderr" "workq-status: error: unknown job id 'nope'"
    assert_regex "$stderr" "unknown job id 'bad/id'"

    run --separate-stderr workq-status job --json "$scheduled" "$waiting" "$running" "$succeeded" \
        "$dead" "$cancelled" nope
    assert_failure 1
    assert_equal "${#lines[@]}" 7
    local line
    for line in "${lines[@]}"; do
        assert_json "$line" 'has("id") and has("queue") and has("state") and has("attempts")
            and has("max_attempts") and has("result") and has("error")'
    done
    assert_equal "$(printf '%s\n' "${lines[@]}" | jq -r .state | tr '\n' ' ')" \
        "scheduled waiting running succeeded dead cancelled unknown "
    assert_json "${lines[0]}" '.queue=="q" and .attempts==0 and .max_attempts==10 and .result==null
        and .error==null and (.due_at|type)=="string"'
    assert_json "${lines[1]}" '.max_attempts==4'
    assert_json "${lines[2]}" '.queue=="run" and .attempts==1 and (.worker|type)=="string"'
    assert_json "${lines[3]}" '.result=="result of hello" and .error==null'
    assert_json "${lines[4]}" '.error=="it broke\n" and .attempts==1 and .max_attempts==1'
    assert_json "${lines[5]}" '.queue=="q"'
    assert_json "${lines[6]}" '.id=="nope" and .queue==null and .attempts==null and .result==null'
}

# ---- --check ------------------------------------------------------------------------------------

# check_is CODE VERDICT [ARGS...]: `workq-status --check ARGS...` exits CODE and prints one line
# on stdout, "WORKQ VERDICT: reason", with perfdata after " | " unless it is UNKNOWN.
check_is() {
    local code=$1 verdict=$2
    shift 2
    run --separate-stderr workq-status --check "$@"
    [ "$status" -eq "$code" ] || fail "--check $*: exit $status, expected $code: $output $stderr"
    assert_equal "${#lines[@]}" 1
    assert_regex "$output" "^WORKQ $verdict: [^ ]"
    [ "$verdict" = UNKNOWN ] || assert_regex "$output" " \| .*live_workers=[0-9]+$"
}

@test "--check: thresholds and their --warn- forms; exit 0 OK, 1 WARNING, 2 CRITICAL with the reason" {
    use_safe_redis
    workq-enqueue q 1 2 3 4 5 >/dev/null
    make_dead_letters d 2
    check_is 0 OK
    assert_output --regexp "^WORKQ OK: 2 queue\(s\), 0 live worker\(s\) \| 'd_waiting'=0 'd_dead'=2 'd_age'=0.000s 'q_waiting'=5 'q_dead'=0 'q_age'=[0-9.]+s live_workers=0$"

    check_is 2 CRITICAL --max-depth 4
    assert_output --partial "q: 5 waiting > 4"
    check_is 0 OK --max-depth 5
    check_is 1 WARNING --max-depth 10 --warn-max-depth 4
    assert_output --partial "q: 5 waiting > 4"
    check_is 2 CRITICAL --max-depth 4 --warn-max-depth 2

    check_is 2 CRITICAL --max-dead 1
    assert_output --partial "d: 2 dead > 1"
    check_is 1 WARNING --warn-max-dead 1
    check_is 0 OK --max-dead 2

    check_is 2 CRITICAL --max-age 1ms
    assert_output --regexp "q: oldest waiting job [0-9.]+s old > 1ms"
    check_is 1 WARNING --warn-max-age 1ms --max-age 1h
    check_is 0 OK --max-age 1h
    # A duration limit of 0 is no limit (CONTRACT.md section 2).
    check_is 0 OK --max-age 0 --warn-max-age 0

    check_is 2 CRITICAL --min-workers 1
    assert_output --partial "0 live worker(s) < 1"
    check_is 1 WARNING --warn-min-workers 1

    # QUEUE... scopes every threshold; critical reasons come before warnings.
    check_is 0 OK d --max-depth 4
    check_is 2 CRITICAL --max-depth 4 --warn-max-dead 1
    assert_output --regexp "CRITICAL: q: 5 waiting > 4; d: 2 dead > 1 \|"
}

@test "--check: usage errors and an unreachable server are UNKNOWN (3), with the reason on stdout" {
    check_is 3 UNKNOWN --max-depth lots
    check_is 3 UNKNOWN --max-age soon
    check_is 3 UNKNOWN 'bad queue!'
    check_is 3 UNKNOWN --no-such-flag
    check_is 3 UNKNOWN --max-depth -1
    check_is 3 UNKNOWN --min-workers -1
    check_is 3 UNKNOWN --warn-max-dead -2
    check_is 3 UNKNOWN --worker 'bad name'
    # A verdict is one line: no other rendering goes with it.
    check_is 3 UNKNOWN --json
    check_is 3 UNKNOWN --prometheus
    check_is 3 UNKNOWN --watch=1s
    # (A server that accepts and never answers: connection.bats.)
    check_is 3 UNKNOWN --redis "unix://$BATS_TEST_TMPDIR/none.sock"
    assert_output --partial "cannot connect"
    # Outside --check a usage error is exit 2 and an unreachable server exit 3, as everywhere.
    run --separate-stderr workq-status --max-depth lots
    assert_failure 2
    run --separate-stderr workq-status --redis "unix://$BATS_TEST_TMPDIR/none.sock"
    assert_failure 3
}

# ---- workers: live, lost, error -----------------------------------------------------------------

@test "kill -9 of a worker: LOST once its heartbeat lapses (15s); --worker and --min-workers see it" {
    use_safe_redis
    start_worker a --name wa q -- cat
    local a=$LAST_PID
    start_worker b --name wb q,other -- cat
    wait_until 10 worker_listed_live "$a"
    wait_until 10 worker_listed_live "$LAST_PID"
    check_is 0 OK --worker wa --min-workers 2
    check_is 0 OK q --min-workers 2
    check_is 2 CRITICAL other --min-workers 2
    assert_output --partial "1 live worker(s) < 2"
    check_is 2 CRITICAL --worker nobody
    assert_output --partial "worker nobody is not registered"

    kill -9 "$a"
    local killed=$SECONDS
    # Still live until its last heartbeat is 15s old (at most 5s had passed).
    run --separate-stderr workq-status
    assert_regex "$(grep ' wa ' <<<"$output")" ' live$'
    wait_until 25 bash -c "! workq-status --json 2>/dev/null | jq -e '.workers[] | select(.name == \"wa\") | .live' >/dev/null" ||
        fail "never flagged lost"
    local after=$((SECONDS - killed))
    echo "# flagged lost ${after}s after kill -9" >&3
    [ "$after" -ge 9 ] || fail "flagged lost after ${after}s: its heartbeat was younger than 15s"
    run --separate-stderr workq-status
    # Its last reported state (running) is not what it is doing: it shows as lost.
    assert_regex "$(grep ' wa ' <<<"$output" | tr -s ' ')" " $a lost q 0/1 .* LOST$"
    assert_regex "$(grep ' wb ' <<<"$output")" ' live$'
    check_is 2 CRITICAL --worker wa
    assert_output --regexp "worker wa is lost \(no heartbeat for 1[5-9]s\)"
    check_is 0 OK --worker wb
    check_is 2 CRITICAL --min-workers 2
    check_is 1 WARNING --min-workers 1 --warn-min-workers 2
    run workq-status --prometheus
    assert_line "workq_workers{namespace=\"$WORKQ_NAMESPACE\",liveness=\"lost\"} 1"
    # Restarted under its name (systemd, a pod): the fresh registration is the worker, not
    # the lost one kept for a day.
    start_worker a2 --name wa q -- cat
    wait_until 10 worker_listed_live "$LAST_PID"
    check_is 0 OK --worker wa
}

@test "--worker NAME: a worker in state error is CRITICAL" {
    use_safe_redis
    local h
    h=$(make_handler h <<'EOF'
echo $$ >>"$D/h.pid"
[ "$(cat)" = long ] && exec sleep 60
exit 0
EOF
)
    export D
    # A COMMAND that stops being executable: the worker goes to error and drains its other job.
    start_worker w --name werr -c 2 q -- "$h"
    id=$(workq-enqueue q long)
    wait_until 10 test -s "$D/h.pid" # the handler runs (claimed is not enough: it must be exec'd)
    chmod -x "$h"
    workq-enqueue q next >/dev/null
    wait_until 10 worker_field_is "$LAST_PID" state error || fail "no error state: $(tail -5 "$D/w.log")"
    check_is 2 CRITICAL --worker werr
    assert_output --partial "worker werr is in state error"
    run --separate-stderr workq-status
    assert_regex "$(grep ' werr ' <<<"$output")" " error "
}

# ---- the server ---------------------------------------------------------------------------------

@test "server warnings (eviction policy, no append-only file) show in every mode, on stderr, and make --check warn" {
    use_own_redis --maxmemory-policy allkeys-lru --appendonly no
    workq-enqueue q x >/dev/null
    run --separate-stderr workq-status
    assert_success
    assert_line --index 1 --regexp "^warning: the server's maxmemory-policy is allkeys-lru"
    assert_line --index 2 --regexp "^warning: the server's append-only file is off"
    assert_regex "$stderr" "workq-status: warning: the server's maxmemory-policy is allkeys-lru"
    run --separate-stderr workq-status --json
    assert_json "$output" '.server.warnings | length == 2'
    run --separate-stderr workq-status --prometheus
    assert_line "workq_server_warnings 2"
    check_is 1 WARNING
    assert_output --partial "maxmemory-policy is allkeys-lru"
    assert_output --partial "append-only file is off"
    # A critical threshold still wins.
    check_is 2 CRITICAL --max-depth 0
    # -q: the view still says it; stderr is quiet.
    run --separate-stderr workq-status -q
    assert_equal "$stderr" ""
    assert_output --partial "warning: the server's maxmemory-policy"
}

@test "--check --no-server-warnings: the server's configuration neither makes it WARNING nor shows on stderr" {
    use_own_redis --maxmemory-policy allkeys-lru --appendonly no
    workq-enqueue q x >/dev/null
    check_is 0 OK --no-server-warnings
    assert_equal "$stderr" ""
    # Thresholds still count.
    check_is 1 WARNING --no-server-warnings --warn-max-depth 0
    assert_output --partial "q: 1 waiting > 0"
    refute_output --partial "maxmemory-policy"
    # It only means something to --check.
    run --separate-stderr workq-status --no-server-warnings
    assert_equal "$status" 2
    assert_regex "$stderr" "--no-server-warnings requires --check"
}

@test "the embedded default: the view names its socket" {
    embedded_test_setup
    run --separate-stderr workq-status --json
    assert_success
    stop_embedded "$(embedded_pid_file)"
    assert_json "$output" '.server.embedded == true and (.server.url | startswith("unix://'"$XDG_RUNTIME_DIR"'/workq/"))'
}

# The commands one workq-status causes, read from INFO commandstats (commands inside scripts
# included): the same for a queue of 10 and a queue of 1,000,000 waiting jobs.
@test "cost: the Redis commands of one workq-status are the same with 10 and with 1,000,000 waiting jobs" {
    use_own_redis
    local t0=$SECONDS
    seq 10 | WORKQ_NAMESPACE=small workq-enqueue q >/dev/null
    # A million jobs through the enqueue script itself, 1,000 per call piped to redis-cli: the
    # records workq-enqueue makes, in a third of the time the sanitized tool takes.
    local sha p="{big:q}:"
    sha=$(script_sha enqueue)
    rcli sadd "{big}:queues" q >/dev/null
    awk -v sha="$sha" -v p="$p" 'BEGIN {
        for (c = 0; c < 1000; c++) {
            printf "EVALSHA %s 1 %smeta %s 0 10 \"\" 0 \"\" \"\" generated 0 \"\"", sha, p, p
            for (i = c * 1000 + 1; i <= (c + 1) * 1000; i++) printf " j%d %d", i, i
            printf "\n"
        }
    }' | rcli --pipe >/dev/null
    echo "# enqueued 1,000,000 in $((SECONDS - t0))s" >&3
    # The first use of a script loads it into the server (SCRIPT LOAD): not what is measured.
    WORKQ_NAMESPACE=small workq-status >/dev/null 2>&1
    local mode small big
    for mode in "" --json --prometheus --check; do
        small=$(commands_of env WORKQ_NAMESPACE=small workq-status $mode)
        big=$(commands_of env WORKQ_NAMESPACE=big workq-status $mode)
        assert_equal "$big" "$small"
    done
    # Neither KEYS nor SCAN.
    ! grep -qE '^(keys|scan) ' <<<"$big" || fail "KEYS or SCAN used: $big"
    run --separate-stderr env WORKQ_NAMESPACE=big workq-status --json
    assert_json "$output" '.queues[0].waiting == 1000000'
    t0=$(now_ms)
    WORKQ_NAMESPACE=big workq-status >/dev/null 2>&1
    echo "# one workq-status on 1,000,000 waiting: $(($(now_ms) - t0))ms" >&3
}

@test "an ACL user denied KEYS, SCAN, CONFIG, FLUSH* and DEBUG can use every tool" {
    start_redis_tcp "$OWN"
    export WORKQ_TEST_REDIS_SOCKET="$OWN/redis.sock"
    rcli acl setuser limited on '>s3cret' '~*' '&*' '+@all' -keys -scan -config -flushall -flushdb -debug >/dev/null
    run redis-cli -p "$REDIS_TCP_PORT" --user limited --pass s3cret --no-auth-warning keys '*'
    assert_output --partial NOPERM
    export WORKQ_REDIS_URL="redis://limited@127.0.0.1:$REDIS_TCP_PORT"
    export WORKQ_REDIS_PASSWORD=s3cret
    export D

    local ok bad later
    ok=$(workq-enqueue q good)
    bad=$(workq-enqueue --max-attempts 1 q bad)
    later=$(workq-enqueue --delay 1h q later)
    start_worker w --burst q -- sh -c '[ "$(cat)" = good ]'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 1
    ! grep -q NOPERM "$D/w.log" || fail "$(grep NOPERM "$D/w.log")"

    run --separate-stderr workq-status
    assert_success
    refute_regex "$stderr" NOPERM
    run --separate-stderr workq-status --json
    assert_success
    assert_json "$output" '.queues[0] | .name=="q" and .dead==1 and .succeeded==1 and .scheduled==1'
    run --separate-stderr workq-status --prometheus
    assert_success
    run --separate-stderr workq-status --check
    [ "$status" -le 1 ] || fail "--check: $output"
    run --separate-stderr workq-status job "$ok" "$bad"
    assert_success
    run --separate-stderr workq-queue ls q
    assert_success
    assert_output --partial "$later"
    run --separate-stderr workq-queue pause q
    assert_success
    run --separate-stderr workq-queue resume q
    assert_success
    run --separate-stderr workq-queue cancel "$later"
    assert_success
    run --separate-stderr workq-queue purge q
    assert_success
    run --separate-stderr workq-dlq ls q
    assert_success
    assert_output --partial "$bad"
    run --separate-stderr workq-dlq show "$bad"
    assert_success
    run --separate-stderr workq-dlq count q
    assert_output 1
    run --separate-stderr workq-dlq export q
    assert_success
    run --separate-stderr workq-dlq requeue q "$bad"
    assert_success
    assert_output "$bad"
}
