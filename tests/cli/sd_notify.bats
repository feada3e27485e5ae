#!/usr/bin/env bats
# workq-work under systemd (issue 11): with NOTIFY_SOCKET set the worker sends READY=1 once it
# runs, STATUS= lines with its state, STOPPING=1 when it drains, and WATCHDOG=1 pings when
# WATCHDOG_USEC asks for them. systemd's end is tests/helpers/notify_listener: a real Unix
# datagram socket that appends each datagram it receives, as lines, to a file.

load work_helpers

LISTENER_PID=""

setup() { work_setup; }
teardown() {
    [ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2>/dev/null || true
    work_teardown
}

# listen SOCKET: starts the listener on SOCKET (a path, or @name); datagrams go to $D/notify.
listen() {
    "$WORKQ_BIN/tests/workq_notify_listener" "$1" >"$D/notify" 2>"$D/listener.log" 3>&- &
    LISTENER_PID=$!
    if [[ $1 == @* ]]; then
        wait_until 5 grep -q "@${1#@}" /proc/net/unix
    else
        wait_until 5 test -S "$1"
    fi
}

notified() { grep -qxF -- "$1" "$D/notify"; }
watchdog_pings() { grep -c '^WATCHDOG=1$' "$D/notify" || true; }
at_least_pings() { [ "$(watchdog_pings)" -ge "$1" ]; }

# line_of TEXT: the number of the first line of $D/notify that is exactly TEXT (fails if none).
line_of() {
    local n
    n=$(grep -nxF -- "$1" "$D/notify" | head -1 | cut -d: -f1)
    [ -n "$n" ] || { echo "no line '$1' in: $(cat "$D/notify")" >&2; return 1; }
    echo "$n"
}

@test "READY=1 once running, STATUS= with each state, STOPPING=1 on a SIGTERM drain, in that order" {
    listen "$D/notify.sock"
    handler=$(make_handler h <<'EOF'
touch "$D/started"
while [ ! -e "$D/go" ]; do sleep 0.05; done
EOF
)
    workq-enqueue -q jobs one >/dev/null
    NOTIFY_SOCKET="$D/notify.sock" D="$D" start_worker w --name sdw jobs -- "$handler"
    pid=$LAST_PID
    wait_until 10 notified "READY=1"
    wait_until 10 test -e "$D/started"
    kill -TERM "$pid"
    wait_until 10 notified "STOPPING=1"
    # The drain waits for the running job: the worker is still there, and says so.
    kill -0 "$pid"
    touch "$D/go"
    wait_exit "$pid" 15
    [ "$EXIT_CODE" -eq 0 ]
    wait_until 5 notified "STATUS=stopped"

    starting=$(line_of "STATUS=starting")
    ready=$(line_of "READY=1")
    running=$(line_of "STATUS=running")
    stopping=$(line_of "STOPPING=1")
    draining=$(line_of "STATUS=draining: SIGTERM")
    stopped=$(line_of "STATUS=stopped")
    [ "$starting" -lt "$ready" ]
    [ "$ready" -lt "$running" ]
    [ "$running" -lt "$stopping" ]
    [ "$stopping" -lt "$draining" ]
    [ "$draining" -lt "$stopped" ]
    [ "$(grep -c '^READY=1$' "$D/notify")" -eq 1 ]
    [ "$(grep -c '^STOPPING=1$' "$D/notify")" -eq 1 ]
    [ "$(watchdog_pings)" -eq 0 ]  # not asked for
}

@test "WATCHDOG=1 arrives again and again while the worker runs when WATCHDOG_USEC is set (abstract socket)" {
    name="workq-test-$$-$RANDOM"
    listen "@$name"
    NOTIFY_SOCKET="@$name" WATCHDOG_USEC=300000 start_worker w jobs -- /bin/cat
    wait_until 10 notified "READY=1"
    wait_until 10 at_least_pings 3
    kill -TERM "$LAST_PID"
    wait_exit "$LAST_PID" 15
    [ "$EXIT_CODE" -eq 0 ]
}

@test "WATCHDOG_PID naming another process: no watchdog pings; readiness is still sent" {
    listen "$D/notify.sock"
    NOTIFY_SOCKET="$D/notify.sock" WATCHDOG_USEC=100000 WATCHDOG_PID=1 start_worker w jobs -- /bin/cat
    wait_until 10 notified "READY=1"
    kill -TERM "$LAST_PID"
    wait_exit "$LAST_PID" 15
    [ "$EXIT_CODE" -eq 0 ]
    wait_until 5 notified "STATUS=stopped"
    [ "$(watchdog_pings)" -eq 0 ]
}

@test "a NOTIFY_SOCKET nobody listens on does not disturb the worker" {
    NOTIFY_SOCKET="$D/nobody.sock" WATCHDOG_USEC=100000 start_worker w jobs -- /bin/cat
    id=$(workq-enqueue jobs hello)
    wait_until 10 eval '[ "$(workq-status job --json "$id" | jq -r .state)" = succeeded ]'
    kill -TERM "$LAST_PID"
    wait_exit "$LAST_PID" 15
    [ "$EXIT_CODE" -eq 0 ]
}
