# Helpers of work.bats and work_signals.bats: workers started in the background and always
# stopped by pid, the worker registry read raw with redis-cli, handler processes found by their
# process group.

# By path, not `load helpers`: tests/fault loads this file from another directory.
source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"

WORKER_PIDS=()

work_setup() {
    workq_test_setup
    D="$BATS_TEST_TMPDIR/d"
    mkdir -p "$D"
    WORKER_PIDS=()
}

# Every worker a test started is gone afterwards (kill -9 if it is still there: its guard then
# kills its handlers' process groups), and so is every process a handler recorded in $D/*.pid
# and a test's own redis-server in $BATS_TEST_TMPDIR/own.
work_teardown() {
    local pid file
    for pid in "${WORKER_PIDS[@]}"; do
        kill -CONT "$pid" 2>/dev/null || true
        kill -9 "$pid" 2>/dev/null || true
    done
    for pid in "${WORKER_PIDS[@]}"; do
        wait_until 5 process_gone "$pid" || true
        wait "$pid" 2>/dev/null || true
    done
    for file in "$D"/*.pid; do
        [ -f "$file" ] || continue
        while read -r pid; do
            # Only what is plainly ours: a handler script of $D or a sleep it started, and the
            # process group it leads (a `timeout` and its child).
            [ -n "$pid" ] && grep -qaE "sleep|$D" "/proc/$pid/cmdline" 2>/dev/null || continue
            [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] && kill -9 -- "-$pid" 2>/dev/null
            kill -9 "$pid" 2>/dev/null || true
        done <"$file"
    done
    stop_redis "$BATS_TEST_TMPDIR/own"
    workq_test_teardown
}

# start_worker NAME ARGS...: runs `workq-work ARGS...` in the background; its stdout goes to
# $D/NAME.out, its stderr to $D/NAME.log; its pid is in $LAST_PID and $D/NAME.wpid. Bats's
# fd 3 is closed, so that bats never waits for a worker.
start_worker() {
    local name=$1
    shift
    workq-work "$@" >"$D/$name.out" 2>"$D/$name.log" 3>&- &
    LAST_PID=$!
    WORKER_PIDS+=("$LAST_PID")
    echo "$LAST_PID" >"$D/$name.wpid"
}

# wait_exit PID SECONDS: waits (bounded) for a worker started by start_worker to exit; sets
# EXIT_CODE. Fails when it is still running after SECONDS.
wait_exit() {
    local pid=$1 seconds=$2
    if ! wait_until "$seconds" process_gone "$pid"; then
        echo "worker $pid still running after ${seconds}s" >&2
        return 1
    fi
    EXIT_CODE=0
    wait "$pid" || EXIT_CODE=$?
}

# log_has NAME TEXT: the worker's log holds TEXT (a fixed string).
log_has() { grep -qF -- "$2" "$D/$1.log"; }

# assert_log NAME TEXT
assert_log() {
    log_has "$1" "$2" || fail "log $1 lacks '$2':
$(tail -30 "$D/$1.log")"
}

# assert_no_stdout NAME: workq-work wrote nothing to stdout.
assert_no_stdout() {
    [ ! -s "$D/$1.out" ] || fail "workq-work wrote to stdout: $(head -c 300 "$D/$1.out")"
}

# ---- the registry, read raw ----

# worker_id_of PID: the registry id of the worker with that pid.
worker_id_of() {
    local id
    for id in $(rcli zrange "{$WORKQ_NAMESPACE}:workers" 0 -1); do
        if [ "$(rcli hget "{$WORKQ_NAMESPACE}:worker:$id" pid)" = "$1" ]; then
            echo "$id"
            return 0
        fi
    done
    return 1
}

# worker_field PID FIELD
worker_field() {
    local id
    id=$(worker_id_of "$1") || return 1
    rcli hget "{$WORKQ_NAMESPACE}:worker:$id" "$2"
}

# worker_field_is PID FIELD VALUE (for wait_until)
worker_field_is() { [ "$(worker_field "$1" "$2")" = "$3" ]; }

# ---- jobs ----

# state_is QUEUE ID STATE (for wait_until)
state_is() { [ "$(raw_job_state "$1" "$2")" = "$3" ]; }

# errors_of QUEUE ID: the job's error list, one JSON object per line.
errors_of() { rcli lrange "{$WORKQ_NAMESPACE:$1}:errors:$2" 0 -1; }

# error_count QUEUE ID: how many failed attempts the job's error list holds.
error_count() { rcli llen "{$WORKQ_NAMESPACE:$1}:errors:$2"; }

# meta_field QUEUE FIELD
meta_field() { rcli hget "{$WORKQ_NAMESPACE:$1}:meta" "$2"; }

# file_count_is DIR N: the directory holds exactly N entries.
file_count_is() { [ "$(ls "$1" | wc -l)" -eq "$2" ]; }

# has_lines FILE N: the file holds at least N lines.
has_lines() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }

# ---- processes ----

# group_gone PGID: no process of that process group is left (zombies count as gone).
group_gone() {
    local pid
    for pid in $(pgrep -g "$1" 2>/dev/null); do
        process_gone "$pid" || return 1
    done
    return 0
}

# alive PID: the process exists and is not a zombie.
alive() { ! process_gone "$1"; }

# make_handler NAME <<'EOF' ... EOF: writes stdin as an executable /bin/sh script $D/NAME and
# prints its path.
make_handler() {
    local path="$D/$1"
    {
        echo '#!/bin/sh'
        cat
    } >"$path"
    chmod +x "$path"
    echo "$path"
}

# escaping_handler: a handler (path printed) that starts children outside its process group and
# blocks until $D/go exists: a `setsid` child (own session), a `timeout` (own group, with its
# `sleep` in it) and a `setsid` child orphaned at once (its parent subshell exits). Their pids go
# to $D/escaped.pid (the timeout's second), the handler's to $D/handler.pid.
escaping_handler() {
    make_handler h <<'EOF2'
echo $$ >"$D/handler.pid"
setsid sleep 1002 &
echo $! >>"$D/escaped.pid"
timeout 1003 sleep 1003 &
echo $! >>"$D/escaped.pid"
(setsid sleep 1004 & echo $! >>"$D/escaped.pid")
while [ ! -e "$D/go" ]; do sleep 0.05; done
EOF2
}

# outside_group PID GROUP: the process runs, and not in that process group.
outside_group() {
    alive "$1" && [ "$(ps -o pgid= -p "$1" | tr -d ' ')" != "$2" ]
}

# escaped_all_gone: every process escaping_handler recorded is gone, the timeout's group too.
escaped_all_gone() {
    local pid
    while read -r pid; do
        process_gone "$pid" || return 1
    done <"$D/escaped.pid"
    group_gone "$(sed -n 2p "$D/escaped.pid")"
}
