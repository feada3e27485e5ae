#!/usr/bin/env bats
# Chaos (CONTRACT.md §9, at least once, under everything at once): 4 supervised workers through
# the fault proxy; one of them kill -9'd every 2 s (and restarted by its supervisor), every
# connection reset every 5 s, until every job has an outcome. Then everything is accounted for.
#
# Size: the issue asks for 5,000 jobs. On the 2-core test machine, with sanitizers, that run
# takes a minute (about 125 jobs/s: a process per job; 27 kills, 10 resets, 16 duplicates in
# one run), over the suite's time budget: scripts/test runs 2,000 (about 25 s);
# FAULT_CHAOS_JOBS=5000 runs the full size.

load fault_helpers

setup() { fault_setup; }
teardown() { fault_teardown; }

# chaos_loop: every second, a tick; every 2nd tick kill -9 one of the workers, every 5th reset
# every connection of the proxy. Each fault is one line in $D/kills or $D/resets.
chaos_loop() {
    local tick=0 i pid
    while :; do
        sleep 1
        tick=$((tick + 1))
        if ((tick % 2 == 0)); then
            i=$((RANDOM % 4 + 1))
            pid=$(cat "$D/w.$i.pid")
            kill -9 "$pid" 2>/dev/null && echo "$pid" >>"$D/kills"
        fi
        if ((tick % 5 == 0)); then
            proxy_ctl reset && echo reset >>"$D/resets"
        fi
    done
}

@test "chaos: 4 workers, a worker kill -9'd every 2 s and restarted, the proxy resetting every 5 s: every job accounted for" {
    local jobs=${FAULT_CHAOS_JOBS:-2000}
    enqueue_jobs q "$jobs"
    : >"$D/kills"
    : >"$D/resets"
    supervise w 4 --lease 1s --shutdown-timeout 2s q -- "$HANDLERS/ledger.sh"
    background chaos_loop
    local chaos=$LAST_BACKGROUND
    # Faults go on until the last job is done (a job held by a killed worker comes back within
    # lease + 5 s), bounded by a generous deadline.
    wait_until $((jobs / 10 + 120)) all_settled q
    stop_background "$chaos"
    stop_supervisors
    local kills resets
    kills=$(wc -l <"$D/kills")
    resets=$(wc -l <"$D/resets")
    echo "# chaos: $jobs jobs, $kills kills, $resets resets" >&3
    [ "$kills" -ge 3 ] || fail "only $kills kills: not much chaos"
    [ "$resets" -ge 1 ] || fail "no reset happened"
    assert_equal "$(count_in_state q succeeded)" "$jobs"
    # Each kill and each reset may cost one duplicate per slot (one slot per worker).
    check_invariants q "$D/ids" $((kills + resets))
}
