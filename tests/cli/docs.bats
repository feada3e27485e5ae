#!/usr/bin/env bats
# Man pages, completions and examples (issue 11), as a user meets them after `cmake --install`:
# the pages render with man -l and have every section; each tool's --help and its page list the
# same options (in both directions), and workq-config(5) has a key for every long flag; the
# bash completion completes flags, subcommands and queue names from the server (every flag of
# --help, and no other); zsh and fish load theirs; the examples run.

load helpers

TOOLS=(enqueue work queue dlq status schedule)

setup_file() {
    export PREFIX="$BATS_FILE_TMPDIR/prefix"
    cmake --install "$WORKQ_BIN" --prefix "$PREFIX" >"$BATS_FILE_TMPDIR/install.log"
}

setup() { workq_test_setup; }
teardown() { workq_test_teardown; }

# Most tests read the same pages and --help texts: each is made once per file and kept in
# $BATS_FILE_TMPDIR (a man rendering or an ASan tool's start costs ~0.1-0.5 s on a busy
# machine; the file used to make ~45 renderings and ~90 --help runs). Made when first asked
# for, by the test that asks, so that a failure shows in that test.
# cached NAME COMMAND...: COMMAND's stdout, run once per file under NAME; a command that fails
# is not kept (run again by the next test that asks, failing there too).
cached() {
    local file="$BATS_FILE_TMPDIR/cache/$1"
    shift
    if [ ! -f "$file" ]; then
        mkdir -p "${file%/*}"
        "$@" >"$file.part" || return
        mv "$file.part" "$file"
    fi
    local text
    IFS= read -r -d '' text <"$file" || true # no `cat`: a process costs ~10 ms here
    printf '%s' "$text"
}

# render PAGE: the installed page as man shows it, plain text (no bold, hyphens as typed).
# man's warnings (--warnings) are kept in $BATS_FILE_TMPDIR/cache/warnings-PAGE; a man that
# fails fails the rendering.
render() { cached "man-$1" render_now "$1"; }
render_now() {
    local - file
    set -o pipefail
    file=$(ls "$PREFIX"/share/man/man?/"$1".?.gz)
    MANWIDTH=100 LC_ALL=C.UTF-8 man --warnings -l "$file" 2>"$BATS_FILE_TMPDIR/cache/warnings-$1" |
        col -b | sed 's/‐/-/g; s/−/-/g'
}

# help_of TOOL [SUBCOMMAND]: workq-TOOL's --help (or its subcommand's).
help_of() { cached "help-$1${2:+-$2}" "$PREFIX/bin/workq-$1" ${2:+"$2"} --help; }

# subcommands TOOL: the subcommands its --help lists.
subcommands() {
    help_of "$1" | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF {print $1}'
}

# options_of_help TEXT: the flags (-x, --long) defined on the option lines of a --help text.
options_of_help() {
    # An option line starts with the option's names alone: "  -c,--concurrency INT ...". Footer
    # lines that begin with a flag ("  --recycle-jobs/--recycle-age/...") are prose.
    grep -E '^  +-' <<<"$1" | sed -E 's/^ +//; s/ .*//' |
        grep -E '^(-[A-Za-z0-9],)?(--[a-z0-9][a-z0-9-]*|-[A-Za-z0-9])$' | tr ',' '\n' | sort -u
}

# flags_of TOOL [SUBCOMMAND]: options_of_help of its --help, once per file.
flags_of() { cached "flags-$1${2:+-$2}" options_of_help "$(help_of "$@")"; }

# help_flags TOOL: the flags of the tool and of each of its subcommands.
help_flags() {
    local tool=$1 sub
    {
        flags_of "$tool"
        for sub in $(subcommands "$tool"); do
            flags_of "$tool" "$sub"
        done
    } | sort -u
}

# man_flags PAGE: the flags defined on the option lines of a rendered page (lines indented 7
# spaces that start with a dash: "       -c, --concurrency N").
man_flags() {
    render "$1" | grep -E '^       -' | grep -oE '(^|[ ,[])-(-[a-z0-9][a-z0-9-]*|[a-zA-Z0-9])' |
        sed -E 's/^[ ,[]//' | sort -u
}

@test "cmake --install puts binaries, man pages and completions in their standard places" {
    for tool in "${TOOLS[@]}"; do
        [ -x "$PREFIX/bin/workq-$tool" ]
        [ -f "$PREFIX/share/man/man1/workq-$tool.1.gz" ]
        [ -f "$PREFIX/share/bash-completion/completions/workq-$tool" ]
        [ -f "$PREFIX/share/fish/vendor_completions.d/workq-$tool.fish" ]
    done
    [ -x "$PREFIX/bin/workq" ]
    [ -f "$PREFIX/share/man/man5/workq-config.5.gz" ]
    [ -f "$PREFIX/share/man/man7/workq.7.gz" ]
    [ -f "$PREFIX/share/bash-completion/completions/workq" ]
    [ -f "$PREFIX/share/zsh/vendor-completions/_workq" ]
    [ -f "$PREFIX/share/fish/vendor_completions.d/workq.fish" ]
    [ -x "$PREFIX/share/doc/workq/examples/pipeline.sh" ]
    [ -f "$PREFIX/share/doc/workq/examples/systemd/workq-work@.service" ]
    [ -f "$PREFIX/share/doc/workq/examples/handlers/persistent-upper.py" ]
    [ -f "$PREFIX/share/doc/workq/README.md" ]
    [ -f "$PREFIX/lib/systemd/system/workq-work@.service" ]
    [ -f "$PREFIX/lib/sysusers.d/workq.conf" ]
    # man finds them by name through the prefix's man path.
    run env MANPATH="$PREFIX/share/man" MANWIDTH=100 man 5 workq-config
    assert_success
    assert_output --partial "workq-config - the workq configuration file"
}

@test "every man page renders with man -l without warnings and has every section" {
    for gz in "$PREFIX"/share/man/man?/*.gz; do
        page=$(basename "$gz" .gz)
        text=$(render "${page%.?}") || fail "$page: man -l failed"
        warnings=$(cat "$BATS_FILE_TMPDIR/cache/warnings-${page%.?}")
        [ -z "$warnings" ] || fail "$page: $warnings"
        sections=(NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT FILES "EXIT STATUS" EXAMPLES "SEE ALSO")
        # workq-config(5) describes keys, not options: its KEYS sections stand for OPTIONS.
        [[ $page == *.5 ]] && sections=("${sections[@]/OPTIONS/TOP LEVEL}")
        for section in "${sections[@]}"; do
            grep -qx -- "$section" <<<"$text" || fail "$page lacks the section $section"
        done
    done
}

@test "every flag of each tool's --help (and its subcommands') is an option in its man page, and no other" {
    for tool in "${TOOLS[@]}"; do
        help=$(help_flags "$tool")
        man=$(man_flags "workq-$tool")
        [ -n "$help" ] && [ -n "$man" ]
        missing=$(comm -23 <(echo "$help") <(echo "$man"))
        extra=$(comm -13 <(echo "$help") <(echo "$man"))
        [ -z "$missing" ] || fail "workq-$tool(1) lacks options of --help: $missing"
        [ -z "$extra" ] || fail "workq-$tool(1) has options --help lacks: $extra"
    done
}

@test "the drift check would notice: a page missing a flag of --help fails it" {
    # The check above compares sets; make sure it sees a real flag of a real page.
    man_flags workq-work | grep -qx -- --shutdown-timeout
    man_flags workq-dlq | grep -qx -- --error-match
    help_flags status | grep -qx -- --warn-max-dead
    ! man_flags workq-work | grep -qx -- --no-such-flag
}

@test "each page lists the exit codes its tool's --help lists" {
    for tool in "${TOOLS[@]}"; do
        help=$(help_of "$tool" | sed -n '/^Exit status:/,/^$/p' |
            grep -oE '^  [0-9]+ ' | tr -d ' ' | sort -un)
        man=$(render "workq-$tool" | sed -n '/^EXIT STATUS$/,/^[A-Z]/p' |
            grep -oE '^       [0-9]+$' | tr -d ' ' | sort -un)
        [ -n "$help" ] || fail "workq-$tool --help lists no exit status"
        [ "$help" = "$man" ] || fail "workq-$tool: --help exits $(echo $help), the page $(echo $man)"
    done
}

@test "every page a page refers to (SEE ALSO and the text) is installed" {
    for gz in "$PREFIX"/share/man/man?/*.gz; do
        page=$(basename "$gz" .gz)
        for ref in $(render "${page%.?}" | grep -oE 'workq(-[a-z]+)?\([0-9]\)' | sort -u); do
            name=${ref%(*}
            section=${ref#*(}
            section=${section%)}
            [ -f "$PREFIX/share/man/man$section/$name.$section.gz" ] ||
                fail "$page refers to $ref, which is not installed"
        done
    done
}

@test "workq-config(5) has a key for every long flag of every tool" {
    # Keys are the flags without dashes; they appear as terms: "       concurrency = N".
    keys=$(render workq-config | grep -E '^       [a-z]' | grep -oE '[a-z][a-z0-9_-]*( =|,|$)' |
        sed -E 's/( =|,)$//' | sort -u)
    for tool in enqueue work status; do
        for flag in $(flags_of "$tool" | grep -E '^--'); do
            key=${flag#--}
            case $key in help | version | config) continue ;; esac
            grep -qx -- "$key" <<<"$keys" || fail "workq-config(5) lacks [$tool] $key"
        done
    done
}

# ---- bash completion ------------------------------------------------------------------------

# complete_line WORD...: runs the installed bash completion of WORD[0] with the cursor at the end
# of the last word; prints COMPREPLY one per line, sorted.
complete_line() {
    local command=$1
    bash -c '
        source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _workq
        printf "%s\n" "${COMPREPLY[@]}"' \
        complete "$PREFIX/share/bash-completion/completions/$command" "$@" | sed '/^$/d' | sort
}

@test "bash completion: flags and subcommands from a partial command line" {
    run complete_line workq-enqueue --max
    assert_output "--max-attempts
--max-payload"
    run complete_line workq ""
    assert_output --partial "dlq"
    assert_line enqueue
    assert_line status
    run complete_line workq-queue ""
    assert_output "cancel
limit
ls
pause
purge
resume
rm"
    run complete_line workq-dlq re
    assert_output "requeue"
    run complete_line workq-queue ls q --state ""
    assert_output "running
scheduled
waiting"
    run complete_line workq-status --log-level w
    assert_output "warn"
    # workq TOOL completes like workq-TOOL.
    run complete_line workq work --bu
    assert_output "--burst"
    run complete_line workq dlq requeue q --a
    assert_output "--all"
    # After a subcommand, its own options and the common ones (they work there too).
    run complete_line workq-dlq ls q --re
    assert_output "--redis"
    run complete_line workq-queue purge q --
    assert_line --yes
    assert_line --namespace
}

@test "bash completion offers exactly the long flags of each --help, for every tool and subcommand" {
    for tool in "${TOOLS[@]}"; do
        expected=$(flags_of "$tool" | grep -E '^--')
        actual=$(complete_line "workq-$tool" --)
        [ "$expected" = "$actual" ] || fail "workq-$tool --: expected
$expected
got
$actual"
        # The options every tool has also work after a subcommand: offered there too.
        common=$(printf '%s\n' --redis --password-file --namespace --config --quiet --log-level \
            --log-format --tls-ca-cert --tls-cert --tls-key --tls-server-name)
        for sub in $(subcommands "$tool"); do
            expected=$( { flags_of "$tool" "$sub" | grep -E '^--'
                echo "$common"; } | sort -u)
            actual=$(complete_line "workq-$tool" "$sub" --)
            [ "$expected" = "$actual" ] || fail "workq-$tool $sub --: expected
$expected
got
$actual"
        done
    done
}

@test "bash completion offers exactly the subcommands each --help lists (workq's tools too)" {
    expected=$("$PREFIX/bin/workq" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}' | sort)
    actual=$(complete_line workq "" | grep -v '^-')
    [ "$expected" = "$actual" ] || fail "workq: expected $(echo $expected), got $(echo $actual)"
    for tool in queue dlq status schedule; do
        expected=$(subcommands "$tool" | sort)
        [ -n "$expected" ]
        actual=$(complete_line "workq-$tool" "")
        [ "$expected" = "$actual" ] || fail "workq-$tool: expected $(echo $expected), got $(echo $actual)"
    done
}

@test "bash completion: queue names come from the server" {
    workq-enqueue -q mail a >/dev/null
    workq-enqueue -q mailbox b >/dev/null
    workq-enqueue -q other c >/dev/null
    export PATH="$PREFIX/bin:$PATH" WORKQ_COMPLETION_TIMEOUT=20
    run complete_line workq-enqueue ma
    assert_output "mail
mailbox"
    run complete_line workq-work -c 4 mail,o
    assert_output "mail,other"
    run complete_line workq-dlq count ot
    assert_output "other"
    run complete_line workq-status --json mai
    assert_output "mail
mailbox"
    # The namespace given on the command line is the one asked.
    run complete_line workq-enqueue --namespace "$WORKQ_NAMESPACE-elsewhere" ma
    assert_output ""
}

@test "bash completion never starts the embedded server to complete a queue name" {
    unset WORKQ_REDIS_URL REDIS_URL WORKQ_CONFIG
    export PATH="$PREFIX/bin:$PATH" XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/run"
    run complete_line workq-enqueue m
    assert_success
    assert_output ""
    [ ! -e "$XDG_STATE_HOME/workq" ] || fail "completion started the embedded server"
}

@test "bash completion: schedule names come from the server, time zones from zoneinfo" {
    workq-schedule -q add nightly q --cron @daily </dev/null
    workq-schedule -q add nightly-2 q --cron @daily </dev/null
    workq-schedule -q add other q --cron @daily </dev/null
    export PATH="$PREFIX/bin:$PATH" WORKQ_COMPLETION_TIMEOUT=20
    run complete_line workq-schedule pause ni
    assert_output "nightly
nightly-2"
    run complete_line workq schedule next o
    assert_output "other"
    run complete_line workq-schedule add x ""
    assert_output "q"
    run complete_line workq-schedule add x q --tz Europe/Berl
    assert_output "Europe/Berlin"
    run complete_line workq-schedule add x q --catch-up ""
    assert_output "latest
none"
}

@test "zsh and fish load their completions" {
    command -v zsh >/dev/null || skip "zsh is not installed (scripts/setup test installs it)"
    command -v fish >/dev/null || skip "fish is not installed (scripts/setup test installs it)"
    zsh -n "$PREFIX/share/zsh/vendor-completions/_workq"
    # compinit with our directory and zsh's own completion system (Completion, Completion/Base),
    # not the ~1,200 other completion files of the default fpath: reading those took ~10 s of
    # the test (~240,000 system calls), and says nothing of ours.
    run zsh -c "fpath=($PREFIX/share/zsh/vendor-completions \${(M)fpath:#*/Completion(|/Base)});
        autoload -U compinit; compinit -u -d $BATS_TEST_TMPDIR/zcompdump;
        print -r -- \$_comps[workq-work] \$_comps[workq]"
    assert_success
    assert_output "_workq _workq"
    run fish -c "set fish_complete_path $PREFIX/share/fish/vendor_completions.d \$fish_complete_path
        complete -C 'workq-queue ls q --st'; complete -C 'workq-dlq '; complete -C 'workq work --bu'
        complete -C 'workq-dlq ls q --nam'"
    assert_success
    assert_line --regexp '^--state'
    assert_line --regexp '^--namespace'
    assert_line --regexp '^requeue'
    assert_line --regexp '^--burst'
    # fish, too, completes queue names from the server.
    workq-enqueue -q mail a >/dev/null
    run env PATH="$PREFIX/bin:$PATH" WORKQ_COMPLETION_TIMEOUT=20 fish -c "
        set fish_complete_path $PREFIX/share/fish/vendor_completions.d \$fish_complete_path
        complete -C 'workq-enqueue ma'; complete -C 'workq work mai'"
    assert_success
    assert_output "mail	queue
mail	queue"
}

# ---- examples -------------------------------------------------------------------------------

@test "examples/pipeline.sh checksums a directory through workq and prints what sha256sum prints" {
    export PATH="$PREFIX/bin:$PATH"
    mkdir -p "$BATS_TEST_TMPDIR/files/sub"
    echo one >"$BATS_TEST_TMPDIR/files/a"
    printf 'two\n' >"$BATS_TEST_TMPDIR/files/sub/b"
    printf 'x y' >"$BATS_TEST_TMPDIR/files/c d"
    run --separate-stderr "$PREFIX/share/doc/workq/examples/pipeline.sh" "$BATS_TEST_TMPDIR/files"
    assert_success
    expected=$(find "$BATS_TEST_TMPDIR/files" -type f -exec sha256sum {} + | sort)
    [ "$(sort <<<"$output")" = "$expected" ] || fail "got: $output"
}

@test "examples/kubernetes: the worker serves the probes' port; /livez and /readyz pass for a running worker, /readyz fails for a paused one" {
    export PATH="$PREFIX/bin:$PATH"
    yaml="$PREFIX/share/doc/workq/examples/kubernetes/deployment.yaml"
    # The worker listens where the probes look: --http on every address, at the container port.
    grep -q '"--http", "0.0.0.0:9100"' "$yaml" || fail "no --http 0.0.0.0:9100 in the args"
    grep -q 'containerPort: 9100' "$yaml"
    livez=$(sed -n '/livenessProbe:/,/^ *[a-z]*Probe:\|resources:/s/.*httpGet: {path: \([^,]*\), port: http}.*/\1/p' "$yaml")
    readyz=$(sed -n '/readinessProbe:/,/resources:/s/.*httpGet: {path: \([^,]*\), port: http}.*/\1/p' "$yaml")
    assert_equal "$livez" /livez
    assert_equal "$readyz" /readyz
    # Port 0 here: a fixed port could be taken on the test machine.
    workq-work --name "pod-$BATS_TEST_NUMBER" --http 0 q -- /bin/cat 2>"$BATS_TEST_TMPDIR/w.log" 3>&- &
    worker=$!
    wait_until 10 grep -q 'serving http://' "$BATS_TEST_TMPDIR/w.log"
    port=$(sed -n 's|.*serving http://127\.0\.0\.1:\([0-9]*\)/ .*|\1|p' "$BATS_TEST_TMPDIR/w.log")
    probe() { curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$1"; }
    wait_until 10 eval '[ "$(probe "$readyz")" = 200 ]'
    assert_equal "$(probe "$livez")" 200
    kill -TSTP "$worker"
    wait_until 10 eval '[ "$(probe "$readyz")" = 503 ]'
    assert_equal "$(probe "$livez")" 200
    kill -CONT "$worker"
    kill -TERM "$worker"
    wait "$worker"
}

@test "examples/systemd/workq-work@.service is a valid unit for systemd" {
    command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
    unit="$BATS_TEST_TMPDIR/workq-work@mail.service"
    sed "s|^ExecStart=workq-work|ExecStart=$PREFIX/bin/workq-work|" \
        "$PREFIX/share/doc/workq/examples/systemd/workq-work@.service" >"$unit"
    run systemd-analyze verify --man=no "$unit"
    assert_success
    [ -z "$output" ] || fail "$output"
    grep -qx 'Type=notify' "$unit"
    grep -qx 'KillMode=mixed' "$unit"
}

@test "examples/prometheus: promtool accepts the scrape config and the rules, which fire on workq-status's own series" {
    command -v promtool >/dev/null ||
        skip "promtool is missing (Debian package prometheus; scripts/setup installs it)"
    export PATH="$PREFIX/bin:$PATH"
    dir="$PREFIX/share/doc/workq/examples/prometheus"
    run promtool check config "$dir/prometheus.yml"
    assert_success
    assert_output --partial "1 rule files found"
    run promtool check rules "$dir/workq-alerts.yml"
    assert_success
    assert_output --partial "2 rules found"
    # The series the rules read, named and labelled as workq-status prints them (so that a rename
    # on either side fails here), with values over time: a job that waits longer and longer, and
    # a dead letter from minute 2.
    workq-enqueue q x >/dev/null
    metrics=$(workq-status --prometheus 2>/dev/null)
    age=$(grep -o '^workq_queue_oldest_waiting_age_seconds{[^}]*}' <<<"$metrics")
    dead=$(grep -o '^workq_queue_dead{[^}]*}' <<<"$metrics")
    [ -n "$age" ] && [ -n "$dead" ] || fail "series missing from: $metrics"
    labels="namespace: $WORKQ_NAMESPACE, queue: q"
    cat >"$BATS_TEST_TMPDIR/rules_test.yml" <<EOT
rule_files: ["$dir/workq-alerts.yml"]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: '$age'
        values: '0+60x30'
      - series: '$dead'
        values: '0 0 1x30'
    alert_rule_test:
      - {eval_time: 5m, alertname: WorkqQueueBacklogOld, exp_alerts: []}
      - eval_time: 20m
        alertname: WorkqQueueBacklogOld
        exp_alerts:
          - exp_labels: {severity: warning, $labels}
            exp_annotations:
              summary: "workq queue q: oldest waiting job is 20m 0s old"
              description: "A job of q (namespace $WORKQ_NAMESPACE) has waited more than 10 minutes. \`workq-status q\` shows its workers; a paused queue shows PAUSED yes."
      - {eval_time: 2m, alertname: WorkqDeadLetters, exp_alerts: []}
      - eval_time: 4m
        alertname: WorkqDeadLetters
        exp_alerts:
          - exp_labels: {severity: warning, $labels}
            exp_annotations:
              summary: "workq queue q: 1 dead letter(s)"
              description: "q (namespace $WORKQ_NAMESPACE) holds dead letters. \`workq-dlq ls q\` lists them with their errors; \`workq-dlq requeue\` runs them again once the cause is fixed."
EOT
    run promtool test rules "$BATS_TEST_TMPDIR/rules_test.yml"
    assert_success
}
