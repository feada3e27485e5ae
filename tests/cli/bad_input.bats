#!/usr/bin/env bats
# Bad input (issue #10): nasty payloads reach handlers byte-identical and are never run by a
# shell; bad queue names are usage errors before any Redis command, in every tool; control
# characters in payloads and errors are escaped in human output, and the --json forms stay
# valid and carry the bytes exactly. What enqueue.bats, work.bats and connection.bats already
# cover (a bad name for workq-enqueue, the limit for --whole, --arg with a NUL byte) is not
# repeated here.

load ops_helpers

setup() { ops_setup; }
teardown() { ops_teardown; }

# The nasty payloads, one file each under $D/payloads/: shell metacharacters that would create
# $D/pwned-* if any shell ever evaluated them, NUL, CR/LF, invalid UTF-8, an empty payload,
# and (with --max-payload 4KiB) exactly the limit.
make_nasty_payloads() {
    local p="$D/payloads"
    mkdir -p "$p"
    printf '$(touch %s/pwned-subst)' "$D" >"$p/subst"
    printf '`touch %s/pwned-backtick`' "$D" >"$p/backtick"
    printf 'x; touch %s/pwned-semicolon; rm -rf %s #' "$D" "$D/payloads" >"$p/semicolon"
    printf "x' | touch %s/pwned-pipe && echo \"\$HOME\" \\\\ > %s/pwned-redirect" "$D" "$D" >"$p/quotes"
    printf 'a\0b\0\0' >"$p/nul"
    printf 'line1\r\nline2\r\n\n' >"$p/crlf"
    printf '\xff\xfe\x80caf\xe9 \xc3\x28' >"$p/invalid-utf8"
    : >"$p/empty"
    # Random bytes, NUL-free so that --arg can carry them too.
    head -c 6000 /dev/urandom | tr -d '\0' | head -c 4096 >"$p/at-limit"
}

assert_nothing_executed() {
    local pwned
    pwned=$(ls "$D" | grep pwned || true)
    [ -z "$pwned" ] || fail "a payload was run by a shell: $pwned"
    [ -d "$D/payloads" ] || fail "a payload was run by a shell: $D/payloads is gone"
}

# enqueue_payloads QUEUE: one job per payload file (--whole: the bytes exactly); "$D/ids" holds
# "id name" lines.
enqueue_payloads() {
    local queue=$1 file id
    : >"$D/ids"
    for file in "$D"/payloads/*; do
        id=$(workq-enqueue --whole --max-payload 4KiB "$queue" <"$file")
        echo "$id $(basename "$file")" >>"$D/ids"
    done
}

# assert_received DIR: DIR/<job id> holds exactly the bytes of the payload of that job.
assert_received() {
    local dir=$1 id name
    while read -r id name; do
        [ -f "$dir/$id" ] || fail "the handler did not get payload $name"
        cmp "$D/payloads/$name" "$dir/$id" ||
            fail "payload $name changed: $(od -c "$dir/$id" | head -3) expected $(od -c "$D/payloads/$name" | head -3)"
    done <"$D/ids"
}

@test "nasty payloads reach a handler's stdin byte-identical; nothing runs them through a shell" {
    make_nasty_payloads
    enqueue_payloads q
    mkdir "$D/got"
    start_worker w --burst q -- sh -c 'cat >"$0/$WORKQ_JOB_ID"' "$D/got"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    assert_received "$D/got"
    assert_nothing_executed
    # The worker's own log does not evaluate or break on them either.
    ! grep -q pwned "$D/w.out" || fail "the worker wrote to stdout"
}

@test "nasty payloads as --arg: the last argument, byte-identical (no NUL), no shell" {
    make_nasty_payloads
    rm "$D/payloads/nul"
    enqueue_payloads q
    mkdir "$D/got"
    start_worker w --burst --arg q -- sh -c 'printf %s "$1" >"$0/$WORKQ_JOB_ID"' "$D/got"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    assert_received "$D/got"
    assert_nothing_executed
}

@test "nasty payloads to a persistent handler: one JSON line each, bytes exact (payload_base64 when not UTF-8)" {
    make_nasty_payloads
    enqueue_payloads q
    mkdir "$D/got"
    cat >"$D/handler.py" <<'PY'
#!/usr/bin/env python3
import base64, json, sys
out_dir = sys.argv[1]
for line in sys.stdin.buffer:
    request = json.loads(line)  # one complete JSON object per line, or this fails
    if "payload_base64" in request:
        payload = base64.b64decode(request["payload_base64"], validate=True)
    else:
        payload = request["payload"].encode("utf-8")
    with open(out_dir + "/" + request["id"], "wb") as f:
        f.write(payload)
    print(json.dumps({"id": request["id"], "ok": True}), flush=True)
PY
    chmod +x "$D/handler.py"
    start_worker w --persistent --burst q -- "$D/handler.py" "$D/got"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    assert_received "$D/got"
    assert_nothing_executed
}

@test "a payload of exactly the limit is a job; one byte more is exit 2 and nothing is sent" {
    start_redis "$OWN"
    export WORKQ_REDIS_URL="unix://$OWN/redis.sock"
    local exact over before
    exact=$(head -c 100 /dev/zero | tr '\0' x)
    over="${exact}y"
    before=$(redis_info_field "$OWN/redis.sock" total_commands_processed)
    for mode in arg stdin null whole; do
        case $mode in
        arg) run --separate-stderr workq-enqueue --max-payload 100 q "$over" ;;
        stdin) run --separate-stderr workq-enqueue --max-payload 100 q <<<"$over" ;;
        null) run --separate-stderr workq-enqueue -0 --max-payload 100 q < <(printf '%s\0' "$over") ;;
        whole) run --separate-stderr workq-enqueue --whole --max-payload 100 q < <(printf '%s' "$over") ;;
        esac
        assert_equal "$status" 2
        assert_equal "$output" ""
        [[ "$stderr" == *limit* ]] || fail "$mode: $stderr"
    done
    # Only the INFO of this test ran since: no command of the tool reached the server.
    assert_equal "$(redis_info_field "$OWN/redis.sock" total_commands_processed)" $((before + 1))

    # Exactly the limit, every way in: accepted, and the handler gets exactly those bytes.
    : >"$D/ids"
    workq-enqueue --max-payload 100 q "$exact" >>"$D/ids"
    workq-enqueue --max-payload 100 q <<<"$exact" >>"$D/ids"
    printf '%s\0' "$exact" | workq-enqueue -0 --max-payload 100 q >>"$D/ids"
    printf '%s' "$exact" | workq-enqueue --whole --max-payload 100 q >>"$D/ids"
    assert_equal "$(wc -l <"$D/ids")" 4
    mkdir "$D/got"
    start_worker w --burst q -- sh -c 'cat >"$0/$WORKQ_JOB_ID"' "$D/got"
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 0
    printf '%s' "$exact" >"$D/exact"
    local id
    while read -r id; do cmp "$D/exact" "$D/got/$id"; done <"$D/ids"
}

# ---- queue names ---------------------------------------------------------------------------

# The names the contract refuses, one per line in $D/bad-names (NUL-free; a name may hold a
# newline, so they are read with a delimiter of their own: \x1e).
bad_names() {
    local long
    long=$(head -c 10000 /dev/zero | tr '\0' q)
    printf '%s\x1e' '' '{q}' 'q}' '{' '*' 'q*' 'x:y' ':' 'a b' ' q' 'q ' $'q\x1b[31m' $'q\a' \
        $'q\r' $'q\n' $'q\t' $'\x7f' 'q/1' '..' '-q' "$long" 'é' 'q?' 'q[1]'
}

@test "bad queue names: every tool exits 2 naming the problem, before any Redis command" {
    start_redis "$OWN"
    export WORKQ_REDIS_URL="unix://$OWN/redis.sock"
    local before name tool args n=0 name_index=-1
    before=$(redis_info_field "$OWN/redis.sock" total_connections_received)
    # Every name through each binary (and a list of queues); the other subcommands and modes
    # share their binary's check, so they get four names that stand for the kinds: empty, a
    # hash tag, an escape sequence, 10,000 characters.
    local -a everywhere=("workq-enqueue --" "workq-work" "workq-work q," "workq-queue ls"
        "workq-dlq ls" "workq-status")
    local -a more=("workq-queue purge" "workq-queue pause" "workq-queue resume" "workq-dlq count"
        "workq-dlq requeue --all" "workq-dlq rm --all" "workq-dlq export" "workq-status --json"
        "workq-status --prometheus")
    while IFS= read -r -d $'\x1e' name; do
        name_index=$((name_index + 1))
        local -a tools=("${everywhere[@]}")
        case $name_index in 0 | 1 | 11 | 20) tools+=("${more[@]}") ;; esac
        for tool in "${tools[@]}"; do
            read -ra args <<<"$tool"
            # "workq-work q," puts the bad name second in a list of queues.
            if [[ "$tool" == "workq-work q," ]]; then
                run --separate-stderr workq-work "q,$name" -- true
            elif [[ "$tool" == workq-work ]]; then
                run --separate-stderr workq-work "$name" -- true
            elif [[ "$tool" == "workq-enqueue --" ]]; then
                run --separate-stderr workq-enqueue -- "$name" x
            else
                run --separate-stderr "${args[@]}" -- "$name"
            fi
            [ "$status" -eq 2 ] || fail "$tool '$(printf %q "$name")': exit $status: $stderr"
            assert_equal "$output" ""
            [[ "${stderr,,}" == *"queue"* ]] || fail "$tool: the queue name is not the problem named: $stderr"
            # The name is shown escaped: no control byte reaches the terminal.
            ! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' <<<"$stderr" ||
                fail "$tool: a control character in the message: $(od -c <<<"$stderr" | head -5)"
            [ "${#stderr}" -lt 1000 ] || fail "$tool: the 10,000-character name is not cut: ${#stderr} bytes"
            n=$((n + 1))
        done
        # --check: the same refusal on the plugin scale, UNKNOWN (3), the reason on stdout.
        run --separate-stderr workq-status --check -- "$name"
        assert_equal "$status" 3
        [[ "$output" == *UNKNOWN*queue* ]] || fail "--check '$(printf %q "$name")': $output"
    done < <(bad_names)
    [ "$n" -eq $((24 * 6 + 4 * 9)) ] || fail "$n cases ran, not $((24 * 6 + 4 * 9))"
    # Nothing connected to the server meanwhile (the INFO reading the count is the only one).
    assert_equal "$(redis_info_field "$OWN/redis.sock" total_connections_received)" $((before + 1))
}

# ---- control characters in human output ------------------------------------------------------

# no_control_bytes TEXT: TEXT holds no C0 control byte but newline (nor DEL, nor a C1 control
# in UTF-8).
no_control_bytes() {
    ! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]\|\xc2[\x80-\x9f]' <<<"$1"
}

assert_escaped() {
    local what=$1 text=$2
    no_control_bytes "$text" ||
        fail "$what: a raw control character reached the output: $(od -c <<<"$text" | grep -E '033|007|\\r|\\0|302' | head -5)"
}

# assert_file_escaped WHAT FILE: the same for a file, NUL bytes included (a shell variable
# would drop them).
assert_file_escaped() {
    ! LC_ALL=C grep -qaP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$2" ||
        fail "$1: a raw control character reached the output: $(od -c "$2" | grep -E '033|007|\\r|\\0|302' | head -5)"
}

@test "control characters in payloads and errors: escaped in human output; --json valid and exact" {
    # The payload holds ESC, BEL, CR, NUL and a C1 CSI; so does the error the handler leaves.
    printf '\e]0;title\a\e[2J\rpay\0load\xc2\x9b31m' >"$D/payload"
    local dead waiting
    dead=$(workq-enqueue --whole --max-attempts 1 q <"$D/payload")
    start_worker w --burst q -- sh -c 'printf "\033[31mred\007 bell\r cr \033]0;pwned\007 \302\2332J\n" >&2; exit 1'
    wait_exit "$LAST_PID" 30
    assert_equal "$EXIT_CODE" 1
    assert_raw_state q "$dead" dead
    waiting=$(workq-enqueue --whole q <"$D/payload")

    local cmd
    for cmd in "workq-dlq ls q" "workq-dlq show $dead" "workq-queue ls q" "workq-status job $dead" \
        "workq-status job $waiting" "workq-status"; do
        $cmd >"$D/out" 2>"$D/err" || fail "$cmd: exit $?: $(cat "$D/err")"
        assert_file_escaped "$cmd (stdout)" "$D/out"
        assert_file_escaped "$cmd (stderr)" "$D/err"
    done
    # The escapes are there to read: ESC as \x1b (or \e, \033).
    run --separate-stderr workq-dlq show "$dead"
    [[ "$output" == *'\x1b'* || "$output" == *'\e'* || "$output" == *'\033'* ]] ||
        fail "the escape is not shown: $output"
    # The worker's log relays the handler's stderr escaped too.
    assert_file_escaped "the worker's log" "$D/w.log"

    # --json: every line parses, and the bytes come back exactly (payload_base64 when not UTF-8,
    # the error as a JSON string).
    run --separate-stderr workq-dlq show --json "$dead"
    assert_success
    assert_json "$output" '.id'
    jq -j '.payload // empty' <<<"$output" >"$D/p1"
    if [ ! -s "$D/p1" ]; then jq -r '.payload_base64' <<<"$output" | base64 -d >"$D/p1"; fi
    cmp "$D/payload" "$D/p1" || fail "dlq show --json: $(od -c "$D/p1" | head -3)"
    jq -e '.error | contains("\u001b[31mred\u0007 bell\r cr")' <<<"$output" >/dev/null ||
        fail "the error is not carried exactly: $(jq .error <<<"$output")"
    run --separate-stderr workq-dlq ls --json q
    assert_success
    assert_json "$output" '.error | contains("\u001b[31mred")'
    run --separate-stderr workq-queue ls --json q
    assert_success
    assert_json "$output" ".id == \"$waiting\""
    run --separate-stderr workq-status job --json "$dead" "$waiting"
    assert_success
    while IFS= read -r line; do assert_json "$line" '.id and .state'; done <<<"$output"
    run --separate-stderr workq-status --json
    assert_success
    assert_json "$output" '.queues[0].dead == 1'
}

@test "ids with control characters: named escaped on stderr as unknown, exit 1, stdout clean" {
    local ok
    ok=$(workq-enqueue q fine)
    local bad=$'evil\e[2J\a\rid'
    run --separate-stderr workq-status job "$bad" "$ok"
    assert_equal "$status" 1
    assert_escaped "status job (stdout)" "$output"
    assert_escaped "status job (stderr)" "$stderr"
    run --separate-stderr workq-queue cancel "$bad"
    assert_equal "$status" 1
    assert_escaped "queue cancel" "$stderr"
    [[ "$stderr" == *evil* ]] || fail "the id is not named: $stderr"
    run --separate-stderr workq-dlq show "$bad"
    assert_equal "$status" 1
    assert_escaped "dlq show" "$stderr$output"
    run --separate-stderr workq-dlq requeue q "$bad"
    assert_equal "$status" 1
    assert_escaped "dlq requeue" "$stderr$output"
    assert_raw_state q "$ok" waiting
}
