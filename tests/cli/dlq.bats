#!/usr/bin/env bats
# workq-dlq (CONTRACT.md §6, issue 7): every subcommand, the filters, ids from stdin, unknown ids,
# an export/import round trip with binary payloads, the cap and its trimmed count in
# workq-status, and scale figures that do not drift: the Redis commands `ls --limit 10` and
# `count` cause are the same for 10 and for 100,000 dead letters, and `export` of 100,000 stays
# under a fixed memory ceiling.

load ops_helpers

# One cluster for the file when WORKQ_TEST_TOPOLOGY=cluster (helpers.bash).
setup_file() { workq_test_setup_file; }
teardown_file() { workq_test_teardown_file; }

setup() { ops_setup; }
teardown() { ops_teardown; }

RFC3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'

# ---- ls, show, count ----------------------------------------------------------------------------

# bats test_tags=cluster
@test "ls: newest first with id, time of death, attempts and the last error's first line; --limit; --json" {
    # One slot and a handler that takes 20ms: a, b, c die in that order, at distinct times.
    workq-enqueue --max-attempts 1 q a b c >"$D/ids"
    local h
    h=$(make_handler slow <<'EOF'
p=$(cat); sleep 0.02
echo "first line $p attempt $WORKQ_ATTEMPT" >&2; echo "second line" >&2; exit 3
EOF
)
    start_worker w --burst q -- "$h"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 1
    local a b c
    { read -r a; read -r b; read -r c; } <"$D/ids"

    run at_terminal workq-dlq ls q
    assert_success
    assert_equal "${#lines[@]}" 4
    assert_regex "${lines[0]}" '^ID +DIED +ATTEMPTS +ERROR$'
    assert_regex "${lines[1]}" "^$c +(just now|[0-9.]+m?s ago) +1/1 +first line c attempt 1"
    assert_regex "${lines[2]}" "^$b .* 1/1 +first line b attempt 1"
    assert_regex "${lines[3]}" "^$a .* 1/1 +first line a attempt 1"
    refute_output --partial "second line"

    run --separate-stderr workq-dlq ls q --limit 2
    assert_success
    assert_equal "${#lines[@]}" 2
    assert_regex "${lines[0]}" "^$c "
    assert_regex "${lines[1]}" "^$b "
    [[ "$stderr" == *"2 of 3 dead letters listed"* ]] || fail "$stderr"
    # In a pipe: no header, the time of death in RFC 3339; --ids the ids alone.
    run --separate-stderr workq-dlq ls q
    assert_equal "${#lines[@]}" 3
    assert_regex "${lines[0]}" "^$c +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z +1/1 +first line c attempt 1"
    run --separate-stderr workq-dlq ls q --ids
    assert_equal "$output" "$c
$b
$a"
    run at_terminal workq-dlq ls q --no-header --limit 1
    assert_equal "${#lines[@]}" 2
    assert_regex "${lines[0]}" "^$c +(just now|[0-9.]+m?s ago) "

    run --separate-stderr workq-dlq ls q --json
    assert_success
    assert_equal "${#lines[@]}" 3
    local line i=0
    for line in "${lines[@]}"; do
        assert_json "$line" '(.id|type=="string") and .queue=="q" and (.died_at|type=="string")
            and .attempts==1 and .max_attempts==1 and (.error|type=="string")
            and (.error|startswith("first line")) and .reason=="exit 3"'
        assert_regex "$(jq -r .died_at <<<"$line")" "$RFC3339"
    done
    assert_equal "$(printf '%s\n' "${lines[@]}" | jq -r .id | tr '\n' ' ')" "$c $b $a "
    # Newest first by time of death.
    assert_equal "$(printf '%s\n' "${lines[@]}" | jq -r .died_at | sort -r | tr '\n' ' ')" \
        "$(printf '%s\n' "${lines[@]}" | jq -r .died_at | tr '\n' ' ')"
    run workq-dlq ls q --json --limit 1
    assert_equal "$(jq -r .id <<<"$output")" "$c"

    # A queue without dead letters: nothing on stdout, a note on stderr, exit 0.
    run --separate-stderr workq-dlq ls empty
    assert_success
    assert_output ""
    [[ "$stderr" == *"no dead letters in queue empty"* ]] || fail "$stderr"
}

# bats test_tags=cluster
@test "show: payload, timestamps and every attempt's error with its reason; --json" {
    id=$(workq-enqueue --max-attempts 3 q 'pay load')
    kill_dead q 1
    run --separate-stderr workq-dlq show "$id"
    assert_success
    assert_line --index 0 --regexp "^$id +dead +queue q +attempts 3/3"
    assert_line --regexp '^  created: '
    assert_line --regexp '^  died: '
    assert_line '  payload (8 bytes): pay load'
    local n
    for n in 1 2 3; do
        assert_line --regexp "^  attempt $n at [0-9T:.-]+Z: exit 3$"
        assert_line "    | first line pay load attempt $n"
    done
    assert_equal "$(grep -c '| second line' <<<"$output")" 3

    run --separate-stderr workq-dlq show --json "$id"
    assert_success
    assert_equal "${#lines[@]}" 1
    assert_json "$output" '.id=="'"$id"'" and .queue=="q" and .payload=="pay load" and .attempts==3
        and .max_attempts==3 and .reason=="exit 3" and (.died_at|type=="string")
        and (.errors|length)==3 and ([.errors[].attempt]==[1,2,3])
        and ([.errors[].reason]|unique)==["exit 3"]
        and (.errors[2].error=="first line pay load attempt 3\nsecond line\n")
        and (.errors|all(.at|type=="string"))'
}

@test "show and export go on past a damaged letter and say so; ls lists it; a damaged dead set is named" {
    # Issue 23, item 2: a wrong-typed errors:<id> made show and export stop half-way.
    workq-enqueue --max-attempts 1 q a b c >"$D/ids"
    start_worker w --burst q -- sh -c 'echo "it broke" >&2; exit 3'
    wait_exit "$LAST_PID" 20
    local a b c p="{$WORKQ_NAMESPACE:q}:"
    { read -r a; read -r b; read -r c; } <"$D/ids"
    rcli del "${p}errors:$a" >/dev/null
    rcli set "${p}errors:$a" x >/dev/null
    rcli del "${p}job:$b" >/dev/null
    rcli set "${p}job:$b" x >/dev/null

    run --separate-stderr workq-dlq show "$a" "$b" "$c"
    assert_failure 1
    assert_line "$a  dead  queue q  attempts 1/1"
    assert_line "  damaged: ${p}errors:$a holds a string where workq keeps a list"
    assert_line "$c  dead  queue q  attempts 1/1"
    assert_line "    | it broke"
    [[ "$stderr" == *"job $a in queue q is damaged: ${p}errors:$a holds a string"* ]] || fail "$stderr"
    [[ "$stderr" == *"job $b in queue q is damaged: ${p}job:$b holds a string where workq keeps a hash"* ]] ||
        fail "$stderr"

    run --separate-stderr workq-dlq export q
    assert_failure 1
    assert_equal "${#lines[@]}" 2
    assert_json "${lines[0]}" '.id == "'"$c"'" and (.errors | length) == 1'
    assert_json "${lines[1]}" '.id == "'"$a"'" and .errors == [] and .payload == "a"'
    [[ "$stderr" == *"dead letter $a is damaged"*"exported with what can be read"* ]] || fail "$stderr"
    [[ "$stderr" == *"dead letter $b is damaged"*"not exported"* ]] || fail "$stderr"

    run --separate-stderr workq-dlq ls q --ids
    assert_success
    assert_equal "$(sort <<<"$output" | tr '\n' ' ')" "$(sort "$D/ids" | tr '\n' ' ')"

    # rm takes the damaged letter away.
    run workq-dlq rm q "$b"
    assert_success
    assert_equal "$(rcli exists "${p}job:$b")" 0

    rcli del "${p}dead" >/dev/null
    rcli set "${p}dead" x >/dev/null
    run --separate-stderr workq-dlq count q
    assert_failure 1
    [[ "$stderr" == *"queue q is damaged: ${p}dead holds another type where workq keeps a zset"* ]] ||
        fail "$stderr"
    run --separate-stderr workq-dlq requeue q "$a"
    assert_failure 1
    [[ "$stderr" == *"queue q is damaged: ${p}dead holds a string where workq keeps a zset; nothing was changed"* ]] ||
        fail "$stderr"
}

@test "count prints the number alone followed by a newline; ls shows 50 unless told" {
    run --separate-stderr workq-dlq count q
    assert_success
    assert_equal "$output" 0
    make_dead_letters q 60
    workq-dlq count q >"$D/count"
    printf '60\n' >"$D/expected"
    cmp "$D/count" "$D/expected" || fail "count printed: $(od -c "$D/count")"
    # ls shows 50 by default; --limit 0 all of them.
    assert_equal "$(workq-dlq ls q | wc -l)" 50
    assert_equal "$(workq-dlq ls q --limit 0 --json | wc -l)" 60
}

# ---- requeue, rm ------------------------------------------------------------------------------

# bats test_tags=cluster
@test "requeue: prints the ids, resets the attempt count, and workers run them again from attempt 1" {
    workq-enqueue --max-attempts 2 q one two three >"$D/ids"
    kill_dead q 3
    local one two three
    { read -r one; read -r two; read -r three; } <"$D/ids"
    assert_equal "$(job_field q "$one" attempts)" 2

    run --separate-stderr workq-dlq requeue q "$one" "$two"
    assert_success
    assert_equal "$output" "$one"$'\n'"$two"
    assert_equal "$stderr" ""
    assert_equal "$(job_attempts q "$one")" 0
    run --separate-stderr workq-status job "$one"
    assert_output --regexp "^$one +waiting +queue q +attempts 0/2"
    assert_equal "$(workq-dlq count q)" 1
    refute_output --partial "$two"

    # They run again with a fresh count: attempt 1 of 2.
    start_worker ok --burst q -- sh -c 'cat >/dev/null; echo "attempt $WORKQ_ATTEMPT"'
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    assert_raw_state q "$one" succeeded
    assert_equal "$(job_field q "$two" result)" "attempt 1"

    run --separate-stderr workq-dlq requeue q --all
    assert_success
    assert_equal "$output" "$three"
    assert_equal "$(workq-dlq count q)" 0
    assert_raw_state q "$three" waiting

    # Naming nothing is a usage error; so is naming two ways (ids, - or --all: one of them).
    run --separate-stderr workq-dlq requeue q
    assert_failure 2
    assert_equal "$output" ""
    assert_regex "$stderr" '^workq-dlq: error: '
    for both in "--all -" "--all $one"; do
        run --separate-stderr workq-dlq requeue q $both </dev/null
        assert_failure 2
        assert_regex "$stderr" 'one of them'
    done
}

# bats test_tags=cluster
@test "requeue of a dead letter whose --unique key a live job holds: it stays dead, stderr names the holder, exit 1; once the holder ends, it comes back" {
    local old new
    old=$(workq-enqueue --unique nightly --max-attempts 1 q old)
    kill_dead q 1
    new=$(workq-enqueue --unique nightly q new)
    [ "$new" != "$old" ] || fail "the key was not free after the job died"
    for way in "$old" --all; do
        run --separate-stderr workq-dlq requeue q "$way"
        assert_failure 1
        assert_equal "$output" ""
        assert_regex "$stderr" "^workq-dlq: error: cannot requeue $old: live job $new holds its --unique key; it stays dead"
        assert_raw_state q "$old" dead
        assert_equal "$(workq-dlq count q)" 1
    done
    # The guarantee holds: one live job with the key.
    assert_equal "$(workq-enqueue --unique nightly q again)" "$new"

    start_worker ok --burst q -- sh -c 'cat >/dev/null'
    wait_exit "$LAST_PID" 20
    assert_raw_state q "$new" succeeded
    run --separate-stderr workq-dlq requeue q --all
    assert_success
    assert_equal "$output" "$old"
    assert_raw_state q "$old" waiting
    assert_equal "$(workq-enqueue --unique nightly q again)" "$old"
}

# bats test_tags=cluster
@test "rm: prints the ids and deletes them for good; --all" {
    make_dead_letters q 4
    local ids
    mapfile -t ids <"$D/q.dead"
    run --separate-stderr workq-dlq rm q "${ids[0]}" "${ids[1]}"
    assert_success
    assert_equal "$output" "${ids[0]}"$'\n'"${ids[1]}"
    job_exists q "${ids[0]}" && fail "the record of a removed dead letter is still there"
    run --separate-stderr workq-status job "${ids[0]}"
    assert_failure 1
    assert_output --partial unknown
    assert_equal "$(workq-dlq count q)" 2

    run --separate-stderr workq-dlq rm q --all
    assert_success
    assert_equal "$(sort <<<"$output")" "$(printf '%s\n' "${ids[2]}" "${ids[3]}" | sort)"
    assert_equal "$(workq-dlq count q)" 0
    assert_equal "$(job_count q)" 0
}

@test "ids from stdin with '-': show, requeue and rm" {
    make_dead_letters q 4
    local ids
    mapfile -t ids <"$D/q.dead"
    run --separate-stderr workq-dlq show --json - < <(printf '%s\n' "${ids[2]}" "${ids[3]}")
    assert_success
    assert_equal "$(jq -r .id <<<"$output")" "${ids[2]}"$'\n'"${ids[3]}"
    run --separate-stderr workq-dlq requeue q - < <(printf '%s\n' "${ids[0]}" "${ids[1]}")
    assert_success
    assert_equal "$output" "${ids[0]}"$'\n'"${ids[1]}"
    assert_raw_state q "${ids[0]}" waiting
    # A pipeline, as the README shows it.
    run --separate-stderr bash -c "workq-dlq ls q --json | jq -r .id | workq-dlq rm q -"
    assert_success
    assert_equal "$(sort <<<"$output")" "$(printf '%s\n' "${ids[2]}" "${ids[3]}" | sort)"
    assert_equal "$(workq-dlq count q)" 0
}

@test "unknown ids: each named on stderr, exit 1, the other ids still processed (requeue, rm, show)" {
    make_dead_letters q 3
    make_dead_letters other 1
    local ids live
    mapfile -t ids <"$D/q.dead"
    live=$(workq-enqueue q waiting-job)
    local foreign
    foreign=$(cat "$D/other.dead")

    run --separate-stderr workq-dlq requeue q nope "${ids[0]}" 'bad/id' "$live" "$foreign"
    assert_failure 1
    assert_equal "$output" "${ids[0]}"
    assert_regex "$stderr" "workq-dlq: error: cannot requeue nope: "
    assert_regex "$stderr" "workq-dlq: error: cannot requeue 'bad/id': "
    assert_regex "$stderr" "workq-dlq: error: cannot requeue $live: "
    assert_regex "$stderr" "workq-dlq: error: cannot requeue $foreign: "
    assert_raw_state q "$live" waiting
    assert_raw_state other "$foreign" dead

    run --separate-stderr workq-dlq rm q - < <(printf '%s\n' "${ids[1]}" nope)
    assert_failure 1
    assert_equal "$output" "${ids[1]}"
    assert_regex "$stderr" "cannot remove nope"

    run --separate-stderr workq-dlq show nope "${ids[2]}" "$live"
    assert_failure 1
    assert_line --index 0 --regexp "^${ids[2]} +dead +queue q"
    assert_regex "$stderr" "no dead letter nope"
    assert_regex "$stderr" "$live is waiting, not a dead letter"
    assert_equal "$(workq-dlq count q)" 1
}

# ---- filters ------------------------------------------------------------------------------------

@test "--older-than and --newer-than on ls, requeue and rm (relative to the server's clock)" {
    make_dead_letters q 4
    local all old new
    mapfile -t all <"$D/q.dead"
    old="$(printf '%s\n' "${all[0]}" "${all[1]}" | sort)"
    new="$(printf '%s\n' "${all[2]}" "${all[3]}" | sort)"
    # Two of them died two hours ago by the server's clock (the time of death is their score),
    # so no wall-clock wait decides the test.
    local now id
    now=$(rcli time | head -1)
    for id in "${all[0]}" "${all[1]}"; do
        rcli zadd "{$WORKQ_NAMESPACE:q}:dead" XX "$(((now - 7200) * 1000))" "$id" >/dev/null
    done

    run workq-dlq ls q --json --older-than 1h
    assert_equal "$(jq -r .id <<<"$output" | sort)" "$old"
    run workq-dlq ls q --json --newer-than 1h
    assert_equal "$(jq -r .id <<<"$output" | sort)" "$new"
    run --separate-stderr workq-dlq ls q --json --older-than 3h
    assert_output ""
    run --separate-stderr workq-dlq ls q --older-than soon
    assert_failure 2

    # A filter alone names the dead letters to act on.
    run --separate-stderr workq-dlq requeue q --older-than 1h
    assert_success
    assert_equal "$(sort <<<"$output")" "$old"
    assert_raw_state q "${all[0]}" waiting
    run --separate-stderr workq-dlq rm q --all --newer-than 1h
    assert_success
    assert_equal "$(sort <<<"$output")" "$new"
    assert_equal "$(workq-dlq count q)" 0
}

@test "--error-match REGEX on ls, requeue and rm matches the error and its reason; a bad regex is a usage error" {
    make_dead_letters q 6 disk-full timeout-talking-to-db
    local all
    mapfile -t all <"$D/q.dead"
    local disk timeout
    disk="$(printf '%s\n' "${all[0]}" "${all[2]}" "${all[4]}" | sort)"
    timeout="$(printf '%s\n' "${all[1]}" "${all[3]}" "${all[5]}" | sort)"

    run workq-dlq ls q --json --error-match 'time.?out'
    assert_equal "$(jq -r .id <<<"$output" | sort)" "$timeout"
    run workq-dlq ls q --json --error-match 'exit-3'
    assert_equal "$(jq -r .id <<<"$output" | wc -l)" 6
    run workq-dlq ls q --error-match '^disk' --limit 2
    assert_equal "${#lines[@]}" 3

    run --separate-stderr workq-dlq requeue q --all --error-match '^disk'
    assert_success
    assert_equal "$(sort <<<"$output")" "$disk"
    run --separate-stderr workq-dlq rm q --error-match 'nothing matches this'
    assert_success
    assert_output ""
    run --separate-stderr workq-dlq rm q --error-match 'db$'
    assert_success
    assert_equal "$(sort <<<"$output")" "$timeout"

    run --separate-stderr workq-dlq ls q --error-match '('
    assert_failure 2
    assert_regex "$stderr" "--error-match: invalid regex"
}

# Issue 23, item 5: std::regex recursed once per character and a 1 MB error (stored by a
# persistent handler before errors were capped) made --error-match die of SIGSEGV. Errors are
# now stored capped at 4 KiB and matched on their last 4 KiB, by an engine without recursion.
@test "--error-match on a 1 MB error (stored before the cap) answers, matching its last 4 KiB" {
    make_dead_letters q 2
    local long short
    mapfile -t ids <"$D/q.dead"
    long=${ids[0]} short=${ids[1]}
    { head -c 1000000 /dev/zero | tr '\0' a; printf 'the end'; } >"$D/error"
    rcli -x hset "{$WORKQ_NAMESPACE:q}:job:$long" error <"$D/error" >/dev/null
    run --separate-stderr workq-dlq ls q --json --error-match '(a|b)*the end$'
    assert_success
    assert_equal "$(jq -r .id <<<"$output")" "$long"
    # Only the last 4 KiB are looked at: the beginning of the 1 MB text is not seen.
    rcli -x hset "{$WORKQ_NAMESPACE:q}:job:$short" error < <(printf 'start'; head -c 5000 /dev/zero | tr '\0' a) >/dev/null
    run --separate-stderr workq-dlq ls q --json --error-match '^start'
    assert_success
    assert_output ""
}

# ---- export, import -----------------------------------------------------------------------------

@test "export/import round trip: binary payloads (NUL, invalid UTF-8) come back byte-identical with their ids" {
    printf 'nul\0byte' >"$D/p1"
    printf '\xff\xfe not utf-8 \x80' >"$D/p2"
    printf 'two\nlines\n' >"$D/p3"
    printf 'h\xc3\xa9llo \xe2\x9c\x93' >"$D/p4"
    local i
    for i in 1 2 3 4; do
        workq-enqueue --whole --max-attempts 1 --priority "$i" q <"$D/p$i" >>"$D/ids"
    done
    start_worker w --burst q -- sh -c 'cat >/dev/null; echo "failed" >&2; exit 3'
    wait_exit "$LAST_PID" 20
    assert_equal "$(workq-dlq count q)" 4

    run --separate-stderr workq-dlq export q
    assert_success
    assert_equal "${#lines[@]}" 4
    printf '%s\n' "${lines[@]}" >"$D/export.jsonl"
    local line
    for line in "${lines[@]}"; do
        assert_json "$line" '(.id|type=="string") and .queue=="q" and .attempts==1
            and .max_attempts==1 and (.died_at|type=="string") and (.errors|length)==1
            and ((.payload|type=="string") or (.payload_base64|type=="string"))'
    done
    # Bytes that are not UTF-8 travel as base64; text (a NUL is text too: \u0000) as text.
    local ids
    mapfile -t ids <"$D/ids"
    payload_json() { jq -c --arg id "$1" 'select(.id==$id) | [.payload, .payload_base64]' "$D/export.jsonl"; }
    assert_equal "$(payload_json "${ids[0]}")" '["nul\u0000byte",null]'
    assert_equal "$(payload_json "${ids[1]}")" "[null,\"$(base64 -w0 <"$D/p2")\"]"
    assert_equal "$(payload_json "${ids[2]}")" '["two\nlines\n",null]'
    assert_equal "$(payload_json "${ids[3]}")" $'["h\xc3\xa9llo \xe2\x9c\x93",null]'

    workq-dlq rm q --all >/dev/null
    assert_equal "$(job_count q)" 0

    run --separate-stderr workq-dlq import q "$D/export.jsonl"
    assert_success
    assert_equal "$(sort <<<"$output")" "$(sort "$D/ids")"
    for i in 1 2 3 4; do
        assert_raw_state q "${ids[$((i - 1))]}" waiting
        assert_equal "$(job_attempts q "${ids[$((i - 1))]}")" 0
        raw_payload_to "$D/back$i" q "${ids[$((i - 1))]}"
        cmp "$D/p$i" "$D/back$i" || fail "payload $i changed: $(od -c "$D/back$i" | head -3)"
    done
    # A handler receives the very bytes.
    start_worker w2 --burst q -- sh -c 'cat >"$0/out.$WORKQ_JOB_ID"' "$D"
    wait_exit "$LAST_PID" 20
    assert_equal "$EXIT_CODE" 0
    for i in 1 2 3 4; do
        cmp "$D/p$i" "$D/out.${ids[$((i - 1))]}" || fail "handler got other bytes for payload $i"
    done

    # Importing again (stdin this time) makes nothing: the ids exist, here or in another queue.
    run --separate-stderr workq-dlq import q <"$D/export.jsonl"
    assert_failure 1
    assert_output ""
    assert_regex "$stderr" "workq-dlq: error: stdin line 1: skipped [^ ]+: a job with this id exists"
    run --separate-stderr workq-dlq import elsewhere "$D/export.jsonl"
    assert_failure 1
    assert_output ""
    assert_regex "$stderr" "exists in queue q"
    # A line that is not an export line is reported with its number; the others are imported.
    printf '{"id":"fresh-1","payload":"x"}\nnot json\n' >"$D/mixed.jsonl"
    run --separate-stderr workq-dlq import q <"$D/mixed.jsonl"
    assert_failure 1
    assert_output fresh-1
    assert_regex "$stderr" "stdin line 2: skipped: not a JSON object"
    assert_raw_state q fresh-1 waiting
}

@test "the --help example works: export, then import --new-ids into another queue of the namespace" {
    make_dead_letters mail 3
    workq-dlq export mail >"$D/mail-dead.jsonl"
    # Without --new-ids the ids exist (the dead letters): each is skipped, exit 1.
    run --separate-stderr workq-dlq import mail-replay "$D/mail-dead.jsonl"
    assert_failure 1
    [[ "$stderr" == *"exists in queue mail"* ]] || fail "$stderr"
    run --separate-stderr workq-dlq import --new-ids mail-replay "$D/mail-dead.jsonl"
    assert_success
    assert_equal "${#lines[@]}" 3
    local id
    for id in "${lines[@]}"; do
        assert_raw_state mail-replay "$id" waiting
        ! grep -q "\"$id\"" "$D/mail-dead.jsonl" || fail "$id is an old id"
    done
    assert_equal "$(workq-dlq count mail)" 3
    # The help shows it that way.
    workq-dlq --help | grep -q 'import --new-ids mail-replay'
}

@test "an import that brings nothing back makes no queue" {
    printf 'not json\n{"id":"x"}\n' >"$D/bad.jsonl"
    run --separate-stderr workq-dlq import replay "$D/bad.jsonl"
    assert_failure 1
    run --separate-stderr workq-status --json
    assert_json "$output" '.queues | length == 0'
    printf '{"id":"again-1","payload":"p"}\n' >"$D/good.jsonl"
    run --separate-stderr workq-dlq import replay "$D/good.jsonl"
    assert_success
    run --separate-stderr workq-status --json
    assert_json "$output" '[.queues[].name] == ["replay"]'
}

@test "export with a filter spanning many pages stays in step (every line valid, each once)" {
    # 1,200 dead letters, every other one matching: the export's page of records fills in the
    # middle of a page of the dead set.
    make_dead_letters q 1200 disk-full timeout
    run --separate-stderr workq-dlq export q --error-match timeout
    assert_success
    assert_equal "${#lines[@]}" 600
    printf '%s\n' "${lines[@]}" | jq -s -e 'length == 600 and all(.error == "timeout")' >/dev/null ||
        fail "a line that does not match, or not valid JSON"
    assert_equal "$(printf '%s\n' "${lines[@]}" | jq -r .id | sort -u | wc -l)" 600
}

# ---- cap ----------------------------------------------------------------------------------------

@test "cap by count and by age trims the oldest, and workq-status shows how many were trimmed" {
    local i
    for i in 1 2 3 4; do
        make_dead_letters q 1 # one at a time: four distinct times of death
        sleep 0.01
    done
    local ids
    mapfile -t ids <"$D/q.dead"
    run --separate-stderr workq-dlq cap q --max-count 2
    assert_success
    assert_equal "$(workq-dlq count q)" 2
    # The newest two are kept.
    assert_equal "$(workq-dlq ls q --json | jq -r .id | sort)" "$(printf '%s\n' "${ids[2]}" "${ids[3]}" | sort)"
    run --separate-stderr workq-status --json q
    assert_equal "$(jq '.queues[0].dead_trimmed' <<<"$output")" 2
    assert_equal "$(jq '.queues[0].dead' <<<"$output")" 2
    run --separate-stderr workq-status q
    assert_output --partial "q: 2 dead letter(s) trimmed by the cap so far"
    run --separate-stderr workq-status --prometheus q
    assert_line "workq_queue_dead_trimmed_total{namespace=\"$WORKQ_NAMESPACE\",queue=\"q\"} 2"

    # The cap holds as more jobs die.
    make_dead_letters q 1
    assert_equal "$(workq-dlq count q)" 2
    assert_equal "$(workq-status --json q | jq '.queues[0].dead_trimmed')" 3

    # By age: none older than 1h. The two kept died two hours ago by the server's clock (their
    # score is the time of death), so no wall-clock wait decides the test.
    local now id
    now=$(rcli time | head -1)
    for id in $(rcli zrange "{$WORKQ_NAMESPACE:q}:dead" 0 -1); do
        rcli zadd "{$WORKQ_NAMESPACE:q}:dead" XX "$(((now - 7200) * 1000))" "$id" >/dev/null
    done
    make_dead_letters q 1
    run --separate-stderr workq-dlq cap q --max-count 0 --max-age 1h
    assert_success
    assert_equal "$(workq-dlq count q)" 1
    assert_equal "$(workq-status --json q | jq '.queues[0].dead_trimmed')" 5

    # No cap: nothing more is trimmed.
    workq-dlq cap q --max-count 0 --max-age 0
    make_dead_letters q 3
    assert_equal "$(workq-dlq count q)" 4
    run --separate-stderr workq-dlq cap q --max-count -1
    assert_failure 2
}

# ---- scale --------------------------------------------------------------------------------------

# Figures that do not drift: the commands Redis executes for `ls --limit 10` and `count`, read
# from INFO commandstats (commands run inside scripts included), are the same for 10 and for
# 100,000 dead letters. Peak memory of `export` for 100,000, above what the same binary needs to
# start (with ASan's quarantine off, the ASan build needs 38-51 MiB to start, growing with the
# code; the export about 10-15 MiB more): the ceiling, 20 MiB more, leaves room for noise but
# not for holding the set: the export of 100,000 records is about 20 MiB of JSON, more than that
# as parsed records.
@test "scale: ls --limit 10 and count cost the same with 10 and 100,000 dead letters; export of 100,000 in bounded memory" {
    use_own_redis
    local t0=$SECONDS
    make_dead_letters small 10
    make_dead_letters big 100000
    echo "# made 100,010 dead letters in $((SECONDS - t0))s" >&3

    local small big
    small=$(commands_of workq-dlq ls small --limit 10)
    big=$(commands_of workq-dlq ls big --limit 10)
    assert_equal "$big" "$small"
    assert_equal "$(workq-dlq ls big --limit 10 | wc -l)" 10
    small=$(commands_of workq-dlq ls small --limit 10 --json)
    big=$(commands_of workq-dlq ls big --limit 10 --json)
    assert_equal "$big" "$small"
    small=$(commands_of workq-dlq count small)
    big=$(commands_of workq-dlq count big)
    assert_equal "$big" "$small"
    assert_equal "$(workq-dlq count big)" 100000

    local start_kib
    ASAN_OPTIONS=$(asan_no_quarantine) /usr/bin/time -f %M -o "$D/rss0" workq-dlq count big >/dev/null
    start_kib=$(peak_rss_kib "$D/rss0")
    t0=$(now_ms)
    ASAN_OPTIONS=$(asan_no_quarantine) /usr/bin/time -f %M -o "$D/rss" \
        workq-dlq export big >"$D/export.jsonl"
    local took=$(($(now_ms) - t0)) rss_kib
    rss_kib=$(($(peak_rss_kib "$D/rss") - start_kib))
    echo "# export of 100,000: ${took}ms, peak RSS ${rss_kib} KiB above the ${start_kib} KiB of a count" >&3
    assert_equal "$(wc -l <"$D/export.jsonl")" 100000
    assert_equal "$(head -1 "$D/export.jsonl" | jq -r .error)" boom
    [ "$rss_kib" -lt 20480 ] || fail "peak RSS ${rss_kib} KiB above a count's, over the 20 MiB ceiling"
}
