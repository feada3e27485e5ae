# Helpers of status.bats, queue.bats and dlq.bats (the operators' tools): a server of the test's
# own, the Redis commands a tool causes, dead letters made in bulk by the engine's own scripts,
# and JSON checks. Workers, handlers and processes: work_helpers.bash.

load work_helpers

LUA_DIR="$(cd "$BATS_TEST_DIRNAME/../../lib/lua" && pwd)"

ops_setup() {
    work_setup
    OWN="$BATS_TEST_TMPDIR/own"
    mkdir -p "$OWN"
}

# ops_teardown also stops the test's own redis-server (work_teardown may already have).
ops_teardown() {
    work_teardown
    stop_redis "$OWN"
}

# use_own_redis [REDIS-SERVER ARGS...]: a redis-server of the test's own, on a socket in $OWN,
# becomes the server of the tools and of rcli. Later arguments win: `use_own_redis --appendonly
# yes` gives a server workq-status has no warning about.
use_own_redis() {
    start_redis "$OWN" "$@"
    export WORKQ_REDIS_URL="unix://$OWN/redis.sock"
    export WORKQ_TEST_REDIS_SOCKET="$OWN/redis.sock"
    unset WORKQ_TEST_CLUSTER_PORT
}

# A server workq-status has nothing to warn about: append-only file on, noeviction.
use_safe_redis() { use_own_redis --appendonly yes --appendfsync everysec --maxmemory-policy noeviction; }

# commands_of COMMAND...: runs COMMAND (stdout and stderr discarded) and prints the Redis commands
# it caused on the test's server, from INFO commandstats (which counts commands run inside
# scripts too): "name calls" per line, sorted. Only for a server nobody else uses meanwhile.
# The INFO that reads the figures is not in them; the CONFIG RESETSTAT that zeroes them is, the
# same every time.
commands_of() {
    rcli config resetstat >/dev/null
    "$@" >/dev/null 2>&1 || true
    rcli info commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\).*/\1 \2/p' | sort
}

# script_sha NAME [QUEUE]: loads lib/lua/NAME.lua as the tools' EVAL text (the common helpers,
# the slot guard's call, the script: cmake/embed_lua.cmake) and prints its SHA1; with QUEUE, on
# the node of that queue's keys (a cluster's master of its slot).
script_text() { cat "$LUA_DIR"/common/*.lua; printf 'slot_guard(KEYS); '; cat "$LUA_DIR/$1.lua"; }
script_sha() {
    if [ -n "${2:-}" ]; then
        script_text "$1" | qcli "$2" -x script load
    else
        script_text "$1" | rcli -x script load
    fi
}

# make_dead_letters QUEUE N [ERROR...]: N new jobs of QUEUE become dead letters through the
# engine's own transitions (enqueue, claim, fail), thousands per second: workq-enqueue, then
# claim and fail scripts piped to redis-cli. The ids, in order of death, are appended to
# $D/QUEUE.dead. Errors cycle through the ERROR words given (default "boom"); reason "exit 3".
make_dead_letters() {
    local queue=$1 n=$2
    shift 2
    local errors=("$@")
    [ ${#errors[@]} -gt 0 ] || errors=(boom)
    local p="{$WORKQ_NAMESPACE:$queue}:" claim_sha fail_sha batch=1000
    seq "$n" | workq-enqueue --max-attempts 1 "$queue" >"$D/$queue.new"
    claim_sha=$(script_sha claim "$queue")
    fail_sha=$(script_sha fail "$queue")
    # Jobs of one priority are claimed oldest first, so claim i takes ids (i-1)*1000+1...i*1000
    # with the tokens tb<i>.1 ... tb<i>.1000 (the claim script numbers them in order).
    local i
    for ((i = 1; i <= (n + batch - 1) / batch; i++)); do
        echo "EVALSHA $claim_sha 1 ${p}meta bulk tb$i 3600000 $batch 0 0 0 $p"
    done | qcli "$queue" --pipe >/dev/null
    awk -v sha="$fail_sha" -v p="$p" -v b="$batch" -v errs="${errors[*]}" '
        BEGIN { ne = split(errs, e, " ") }
        { i = int((NR - 1) / b) + 1; k = (NR - 1) % b + 1
          print "EVALSHA " sha " 1 " p "meta " p " " $1 " tb" i "." k " " e[(NR - 1) % ne + 1] " exit-3 -1 86400000" }
    ' "$D/$queue.new" | qcli "$queue" --pipe >/dev/null
    cat "$D/$queue.new" >>"$D/$queue.dead"
    local dead
    dead=$(rcli zcard "${p}dead")
    [ "$(rcli zcard "${p}running")" = 0 ] || fail "make_dead_letters: jobs left running"
    [ "$dead" -ge "$n" ] || fail "make_dead_letters: $dead dead letters, expected $n"
}

# dead_count QUEUE: the queue's dead letters, read raw.
dead_count() { rcli zcard "{$WORKQ_NAMESPACE:$1}:dead"; }

# dead_count_is QUEUE N (for wait_until)
dead_count_is() { [ "$(dead_count "$1")" = "$2" ]; }

# failing_handler: prints the path of a handler that fails every job (exit 3) with two lines on
# stderr: "first line <payload> attempt <n>" and "second line".
failing_handler() {
    make_handler failing <<'EOF'
p=$(cat)
echo "first line $p attempt $WORKQ_ATTEMPT" >&2
echo "second line" >&2
exit 3
EOF
}

# kill_dead QUEUE N [WORKER ARGS...]: runs a worker on QUEUE with the failing handler (retries
# after 10ms) until the queue has N dead letters, then stops it (SIGTERM, bounded wait).
kill_dead() {
    local queue=$1 n=$2
    shift 2
    local h
    h=$(failing_handler)
    start_worker "kill-$queue" --backoff 10ms,10ms "$@" "$queue" -- "$h"
    local pid=$LAST_PID
    wait_until 20 dead_count_is "$queue" "$n" || fail "no $n dead letters in $queue: $(tail -5 "$D/kill-$queue.log")"
    kill -TERM "$pid"
    wait_exit "$pid" 10
}

# worker_listed_live PID: workq-status lists the worker with that pid as live.
worker_listed_live() {
    workq-status --json 2>/dev/null | jq -e --argjson pid "$1" '.workers[] | select(.pid == $pid and .live)' >/dev/null
}

# peak_rss_kib FILE: the peak RSS /usr/bin/time -f %M wrote (its last line).
peak_rss_kib() { tail -1 "$1"; }

# ASan's quarantine keeps up to 256 MiB of freed memory to catch use-after-free; a peak-memory
# figure would measure it instead of workq. Memory tests turn it off (see enqueue.bats).
asan_no_quarantine() { echo "${ASAN_OPTIONS:-detect_leaks=1}:quarantine_size_mb=0"; }
