# The invariant checker of the fault suite, run after every scenario. It reads the raw keys
# with plain redis-cli commands (README "Data model"), never through workq's own code, so a
# bug in the library cannot hide itself.
#
# check_invariants QUEUE IDS_FILE [MAX_DUPLICATES]
#   Every id of IDS_FILE (one per line: every id the scenario enqueued) is succeeded, dead with
#   a reason, cancelled, or still queued (waiting or scheduled): never missing, never running
#   (the scenario waits for outcomes first), never in two places; the queue holds no job
#   beyond them; its structures hold each id once and only where its state says; the queue's
#   `succeeded` counter equals the succeeded jobs (no completion counted twice). From the
#   ledger the handlers append to ($FAULT_LEDGER: "start ID ATTEMPT PID" / "end ID ATTEMPT"):
#   every succeeded job ran to its end at least once, and runs beyond the first that reached
#   their end (duplicates) are at most MAX_DUPLICATES (default 0). No handler recorded in
#   $FAULT_PIDS, nor anything of its process group, is left.
# Prints one summary line; on a violation, each problem, and returns 1.

check_invariants() {
    local queue=$1 ids_file=$2 max_duplicates=${3:-0}
    local prefix="{$WORKQ_NAMESPACE:$queue}:"
    local work="$BATS_TEST_TMPDIR/invariants"
    rm -rf "$work"
    mkdir -p "$work"
    local problems="$work/problems"
    : >"$problems"
    sort -u "$ids_file" >"$work/ids"
    local total
    total=$(wc -l <"$work/ids")
    [ "$total" -eq "$(wc -l <"$ids_file")" ] || echo "the id list names an id twice" >>"$problems"

    # Per id, in one pipeline: the state field, the reason's length, and its scores in the
    # running, scheduled and dead sorted sets (an empty line: not a member).
    awk -v p="$prefix" '{
        printf "HGET \"%sjob:%s\" state\n", p, $1
        printf "HSTRLEN \"%sjob:%s\" reason\n", p, $1
        printf "ZSCORE \"%srunning\" \"%s\"\n", p, $1
        printf "ZSCORE \"%sscheduled\" \"%s\"\n", p, $1
        printf "ZSCORE \"%sdead\" \"%s\"\n", p, $1
    }' "$work/ids" | rcli >"$work/raw"
    # Every id in the waiting lists, one per line (an id twice is a violation).
    local list
    : >"$work/waiting"
    for list in $(rcli --scan --pattern "${prefix}waiting:*"); do
        rcli lrange "$list" 0 -1 >>"$work/waiting"
    done
    # One line per id: ID STATE REASON_LENGTH RUNNING SCHEDULED DEAD TIMES_WAITING
    paste -d' ' "$work/ids" <(awk '{ printf "%s%s", $0, (NR % 5 ? "\t" : "\n") }' "$work/raw") |
        tr '\t' ' ' >"$work/rows.raw"
    awk -v problems="$problems" '
        FILENAME == ARGV[1] { waiting[$1]++; next }
        {
            # Empty fields (nil) would collapse in split(): read the columns by position.
            line = $0
            id = substr(line, 1, index(line, " ") - 1); rest = substr(line, index(line, " ") + 1)
            for (i = 1; i <= 5; i++) {
                cut = index(rest, " ")
                col[i] = cut ? substr(rest, 1, cut - 1) : rest
                rest = cut ? substr(rest, cut + 1) : ""
            }
            state = col[1]; reason = col[2]; running = col[3] != ""; scheduled = col[4] != ""
            dead = col[5] != ""; times_waiting = waiting[id] + 0
            seen[id] = 1
            count[state == "" ? "missing" : state]++
            where = (running ? "running " : "") (scheduled ? "scheduled " : "") \
                    (dead ? "dead-set " : "") (times_waiting ? "waiting-list(" times_waiting ") " : "")
            expected = ""
            if (state == "succeeded" || state == "cancelled") expected = ""
            else if (state == "dead") expected = "dead-set "
            else if (state == "waiting") expected = "waiting-list(1) "
            else if (state == "scheduled") expected = "scheduled "
            else if (state == "") { print "job " id ": missing (no record)" >>problems; next }
            else { print "job " id ": state \"" state "\", not an outcome or queued" >>problems; next }
            if (where != expected)
                print "job " id ": state " state " but found in: [" where "]" >>problems
            if (state == "dead" && reason + 0 == 0)
                print "job " id ": dead without a reason" >>problems
        }
        END {
            for (id in waiting) if (!(id in seen))
                print "waiting list holds " id ", which was never enqueued" >>problems
            printf "%d %d %d %d %d\n", count["succeeded"], count["dead"], count["cancelled"],
                   count["waiting"], count["scheduled"] > "/dev/stdout"
        }' "$work/waiting" "$work/rows.raw" >"$work/counts"
    local succeeded dead cancelled waiting scheduled
    read -r succeeded dead cancelled waiting scheduled <"$work/counts"

    # Nothing beyond the enqueued jobs: records, and members of the sorted sets.
    local records
    records=$(rcli --scan --pattern "${prefix}job:*" | wc -l)
    [ "$records" -eq "$total" ] ||
        echo "the queue holds $records job records, $total were enqueued" >>"$problems"
    local set member
    for set in running scheduled dead; do
        for member in $(rcli zrange "${prefix}$set" 0 -1); do
            grep -qxF -- "$member" "$work/ids" ||
                echo "$set holds $member, which was never enqueued" >>"$problems"
        done
    done
    local counted
    counted=$(rcli hget "${prefix}meta" succeeded)
    [ "${counted:-0}" -eq "$succeeded" ] ||
        echo "the queue counted ${counted:-0} successes; $succeeded jobs succeeded" >>"$problems"

    # The ledger: every success ran to its end; duplicates within the bound.
    local runs=0 duplicates=0
    if [ -n "${FAULT_LEDGER:-}" ] && [ -f "$FAULT_LEDGER" ]; then
        awk '$1 == "end" { print $2 }' "$FAULT_LEDGER" | sort >"$work/ends"
        runs=$(wc -l <"$work/ends")
        duplicates=$((runs - $(sort -u "$work/ends" | wc -l)))
        awk -v p="$prefix" '{ printf "HGET \"%sjob:%s\" state\n", p, $1 }' "$work/ids" | rcli |
            paste -d' ' "$work/ids" - | awk '$2 == "succeeded" { print $1 }' >"$work/succeeded"
        comm -23 "$work/succeeded" <(sort -u "$work/ends") | head -5 | while read -r id; do
            echo "job $id succeeded, but no handler run of it reached its end" >>"$problems"
        done
        [ "$duplicates" -le "$max_duplicates" ] ||
            echo "$duplicates duplicate runs, at most $max_duplicates allowed" >>"$problems"
    fi

    # No handler left, nor anything in its process group (one look at every process).
    if [ -n "${FAULT_PIDS:-}" ] && [ -f "$FAULT_PIDS" ]; then
        ps -eo pid=,pgid=,stat= | awk -v problems="$problems" '
            FILENAME == ARGV[1] { if ($1 != "") recorded[$1] = 1; next }
            $3 !~ /^Z/ && (($1 in recorded) || ($2 in recorded)) {
                print "handler process " $1 " (group " $2 ") is still there" >>problems
            }' "$FAULT_PIDS" -
    fi

    echo "# invariants: $total jobs: $succeeded succeeded, $dead dead, $cancelled cancelled," \
        "$((waiting + scheduled)) queued; $runs runs to the end, $duplicates duplicates" \
        "(at most $max_duplicates)" >&3
    if [ -s "$problems" ]; then
        echo "invariant violations:" >&2
        head -30 "$problems" >&2
        return 1
    fi
}
