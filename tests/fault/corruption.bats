#!/usr/bin/env bats
# Corruption at every kind of key (README, "Damaged data"; issue 23, item 2) while workers run:
# job records of the wrong type or with fields workq never writes, an error list, a --unique key
# and the wake key of another type, meta counters that are not numbers, and every structure of
# the queue (meta, priorities, a waiting list, scheduled, running, dead, the rate limit's log of
# starts, the schedules' ticks and watchers) replaced by a string for a moment, then put back as
# it was. A bad record is quarantined (dead with the reason
# `corrupt`), a damaged queue waits, and the other queue the same workers serve is unharmed.
# Then the invariant checker accounts for every job of both queues.

load fault_helpers

setup() { fault_setup; }
teardown() { fault_teardown; }

# A job of q1 now running, or waiting (a few places from the head: it is met soon, not at once).
first_running() { rcli zrange "{$WORKQ_NAMESPACE:q1}:running" 0 0; }
first_waiting() { rcli lindex "{$WORKQ_NAMESPACE:q1}:waiting:0" $((RANDOM % 8 + 4)); }

# damage_job ID STATE LUA: runs LUA on the job's record (KEYS[1]) only while the job is in
# STATE, in one step: a job that ended meanwhile is met by no script any more.
damage_job() {
    rcli eval "if redis.call('HGET', KEYS[1], 'state') == ARGV[1] then $3 end" 1 \
        "{$WORKQ_NAMESPACE:q1}:job:$1" "$2" >/dev/null
}

# corrupt_loop: every 0.3 s one corruption of queue q1, in turn, each logged in $D/damage
# before it is made; a structure replaced in one turn is put back in the next (mend_structure).
corrupt_loop() {
    local p="{$WORKQ_NAMESPACE:q1}:" turn=0 round=0 id
    local structures=(meta priorities waiting:0 scheduled running dead starts ticks watchers)
    while :; do
        sleep 0.3
        if [ -s "$D/aside" ]; then
            mend_structure
            continue
        fi
        turn=$((turn + 1))
        case $((turn % 10)) in
        1) id=$(first_waiting) && [ -n "$id" ] && echo "job:$id string" >>"$D/damage" &&
            damage_job "$id" waiting "redis.call('DEL', KEYS[1]); redis.call('SET', KEYS[1], 'x')" ;;
        2) id=$(first_waiting) && [ -n "$id" ] && echo "job:$id prio nan" >>"$D/damage" &&
            damage_job "$id" waiting "redis.call('HSET', KEYS[1], 'prio', 'nan')" ;;
        3) id=$(first_running) && [ -n "$id" ] && echo "job:$id state bogus" >>"$D/damage" &&
            damage_job "$id" running "redis.call('HSET', KEYS[1], 'state', 'bogus')" ;;
        4) id=$(first_running) && [ -n "$id" ] && echo "job:$id attempts x" >>"$D/damage" &&
            damage_job "$id" running "redis.call('HSET', KEYS[1], 'attempts', 'x')" ;;
        5) id=$(first_waiting) && [ -n "$id" ] && echo "job:$id no payload" >>"$D/damage" &&
            damage_job "$id" waiting "redis.call('HDEL', KEYS[1], 'payload')" ;;
        6) id=$(first_running) && [ -n "$id" ] && echo "errors:$id string" >>"$D/damage" &&
            rcli set "${p}errors:$id" x >/dev/null ;;
        7) echo "wake string" >>"$D/damage" && rcli del "${p}wake" >/dev/null &&
            rcli set "${p}wake" x >/dev/null ;;
        8) echo "unique:u1 hash" >>"$D/damage" && rcli del "${p}unique:u1" >/dev/null &&
            rcli hset "${p}unique:u1" f x >/dev/null ;;
        # (Not `succeeded`: the checker compares it with the jobs that succeeded; a counter
        # that is not a number starts again, as the model test checks.)
        9) echo "meta counter" >>"$D/damage" && rcli hset "${p}meta" failed x >/dev/null ;;
        0)
            local key=${structures[$((round % ${#structures[@]}))]}
            round=$((round + 1))
            echo "$key string" >>"$D/damage"
            echo "$key" >"$D/aside"
            # In one step: between a rename and a set, a script would make the key afresh (a
            # success counted in a new meta), and the set would drop what it wrote.
            rcli eval "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end
                redis.call('SET', KEYS[1], 'x')" 2 "${p}$key" "${p}aside" >/dev/null
            ;;
        esac
    done
}

# mend_structure: puts back the structure corrupt_loop replaced, as it was.
mend_structure() {
    local p="{$WORKQ_NAMESPACE:q1}:" key
    key=$(cat "$D/aside")
    # In one step, for the same reason as the damage.
    rcli eval "redis.call('DEL', KEYS[1])
        if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[1]) end" \
        2 "${p}$key" "${p}aside" >/dev/null
    echo "mended $key" >>"$D/damage"
    : >"$D/aside"
}

line_count() { wc -l <"$1"; }

@test "corruption at every key type of one queue while workers serve it and another: nothing lost, the other unharmed" {
    local p="{$WORKQ_NAMESPACE:q1}:"
    enqueue_jobs q1 80
    WORKQ_REDIS_URL=$DIRECT_URL workq-enqueue --unique u1 q1 unique-job >>"$D/ids"
    # Some retries, so that scheduled and dead hold jobs too.
    seq -f 'later-%g' 10 | WORKQ_REDIS_URL=$DIRECT_URL workq-enqueue --delay 1s q1 >>"$D/ids"
    mv "$D/ids" "$D/ids1"
    enqueue_jobs q0 80
    mv "$D/ids" "$D/ids0"
    : >"$D/damage"
    : >"$D/aside"
    # A rate limit that holds nothing back: its log of starts is one more structure to damage.
    WORKQ_REDIS_URL=$DIRECT_URL workq-queue limit q1 --rate 100000/1s >/dev/null
    export FAULT_SLEEP=0.25
    start_worker a -c 2 --lease 1s q1,q0 -- "$HANDLERS/ledger.sh"
    start_worker b -c 2 --lease 1s q1,q0 -- "$HANDLERS/ledger.sh"
    background corrupt_loop
    local loop=$LAST_BACKGROUND
    # The other queue flows while q1 is being damaged.
    wait_until 60 all_settled q0
    # Every kind of damage, every structure once (nine rounds of the cycle), then all mended.
    wait_until 180 at_least 9 grep -c '^mended' "$D/damage"
    stop_background "$loop"
    [ ! -s "$D/aside" ] || mend_structure
    # Stale entries a damaged structure kept (a job that ended meanwhile) go at their lease.
    wait_until 60 all_settled q1
    kill -TERM "$(cat "$D/a.wpid")" "$(cat "$D/b.wpid")"
    wait_exit "$(cat "$D/a.wpid")" 30
    wait_exit "$(cat "$D/b.wpid")" 30
    echo "# damage: $(grep -vc '^mended' "$D/damage") corruptions, $(grep -c '^mended' "$D/damage") mended" >&3

    # q0 untouched: every job succeeded, each ran once.
    cp "$D/ids0" "$D/ids"  # count_in_state reads $D/ids
    assert_equal "$(count_in_state q0 succeeded)" 80
    # The ledger holds both queues' runs: each is checked against its own.
    local ledger=$FAULT_LEDGER
    awk 'FILENAME == ARGV[1] { ours[$1] = 1; next } ($2 in ours)' "$D/ids0" "$ledger" >"$D/ledger0"
    awk 'FILENAME == ARGV[1] { ours[$1] = 1; next } ($2 in ours)' "$D/ids1" "$ledger" >"$D/ledger1"
    FAULT_LEDGER="$D/ledger0" check_invariants q0 "$D/ids0" 0
    # q1: every job succeeded or is dead with a reason; the quarantined ones say what was wrong.
    local corrupt
    corrupt=$(awk -v p="$p" '{ printf "HGET \"%sjob:%s\" reason\n", p, $1 }' "$D/ids1" | rcli |
        grep -cx corrupt || true)
    [ "$corrupt" -ge 3 ] || fail "only $corrupt jobs quarantined: $(cat "$D/damage")"
    # A job whose lease lapsed while its queue was damaged runs again: duplicates are bounded by
    # the damage, not zero.
    FAULT_LEDGER="$D/ledger1" check_invariants q1 "$D/ids1" 91
    # The workers named the damage (once per change) and went on.
    grep -q "the queue is damaged: ${p}" "$D/a.log" "$D/b.log" || fail "no worker named the damage"
    assert_equal "$(workq-status q0 >/dev/null 2>&1; echo $?)" 0
}
