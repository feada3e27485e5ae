#!/usr/bin/env bats
# `workq-work --http` under load (CONTRACT.md section 12, issue 20): scrapes of /metrics and
# /readyz from four clients at once while 1,000 jobs run through the worker. Every job runs
# exactly once, every scrape is a 200 (a promtool-clean exposition for /metrics), and nothing
# stalls: each wait has a deadline, and no time is asserted.

load work_helpers
load http_helpers

setup() { work_setup; }
teardown() { work_teardown; }

# scraper N PATH: requests PATH until $D/stop exists; each reply's HTTP code and curl's exit
# status go to $D/codes.N ("200 0" for a whole 200), each body to $D/scrapes/N.<i>. A stalled
# worker shows as "000 28" after curl's 20 s, a body cut short as curl's 18.
scraper() {
    local n=$1 path=$2 i=0 code rc
    while [ ! -e "$D/stop" ]; do
        i=$((i + 1))
        rc=0
        code=$(curl -s --max-time 20 -o "$D/scrapes/$n.$i" -w '%{http_code}' \
            "http://127.0.0.1:$PORT$path") || rc=$?
        echo "$code $rc" >>"$D/codes.$n"
    done
}

# scraped N TIMES: scraper N has finished at least TIMES requests (for wait_until).
scraped() { has_lines "$D/codes.$1" "$2"; }

# check_expositions FILE...: each file is a promtool-clean exposition. promtool runs once per
# distinct shape (the text with every sample's value replaced by 0), not once per file (there are
# hundreds): whether each value is a number is checked here, on every file.
check_expositions() {
    awk -v out="$D/shapes" '
        FNR == 1 {
            if (shape != "") close(shape)
            file = FILENAME; sub(/.*\//, "", file); shape = out "/" file
        }
        /^#/ || /^$/ { print > shape; next }
        {
            value = $NF
            if (value !~ /^[-+]?([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|Inf|NaN)$/) {
                printf "%s: not a number in: %s\n", FILENAME, $0
                bad = 1
            }
            $NF = "0"
            print > shape
        }
        END { exit bad }' "$@" >"$D/numbers" || fail "$(head -5 "$D/numbers")"
    local file
    md5sum "$D"/shapes/* | sort | awk '!seen[$1]++ { print $2 }' >"$D/distinct"
    while read -r file; do
        promtool check metrics <"$file" >"$D/promtool.out" 2>&1 ||
            fail "$file (values zeroed): $(cat "$D/promtool.out")"
    done <"$D/distinct"
}

@test "--http: four clients scraping /metrics and /readyz while 1,000 jobs run: every job once, every scrape a clean 200" {
    need_promtool
    mkdir -p "$D/scrapes"
    # The handler appends its payload to a ledger: one line per run, so a job run twice shows.
    local h
    h=$(make_handler h <<'EOF2'
IFS= read -r payload || true
printf '%s\n' "$payload" >>"$D/ledger"
EOF2
)
    export D
    start_http_worker w -c 4 q -- "$h"
    local w=$LAST_PID
    wait_until 20 eval '[ "$(status_of /readyz)" = 200 ]'
    local n pids=()
    for n in 1 2 3 4; do
        if [ $((n % 2)) = 1 ]; then scraper "$n" /metrics 3>&- & else scraper "$n" /readyz 3>&- & fi
        pids+=("$!")
        WORKER_PIDS+=("$!")
    done
    # The jobs go in once every client is scraping.
    for n in 1 2 3 4; do wait_until 20 scraped "$n" 1; done
    seq 1000 | workq-enqueue -q q >/dev/null
    wait_until 300 eval '[ "$(workq-status --json q 2>/dev/null | jq ".queues[0].succeeded")" = 1000 ]' ||
        fail "not every job succeeded: $(workq-status --json q 2>&1)"
    # A last scrape by each client after the last job.
    local before
    for n in 1 2 3 4; do
        before=$(wc -l <"$D/codes.$n")
        wait_until 60 scraped "$n" $((before + 1))
    done
    touch "$D/stop"
    local pid
    for pid in "${pids[@]}"; do wait_until 60 process_gone "$pid"; done

    # Every job exactly once.
    run --separate-stderr workq-status --json q
    assert_json "$output" '.queues[0] | .succeeded == 1000 and .failed == 0 and .dead == 0 and .waiting == 0 and .running == 0'
    assert_equal "$(wc -l <"$D/ledger")" 1000
    assert_equal "$(sort -n "$D/ledger")" "$(seq 1000)"
    # Every scrape a 200; every /metrics body promtool-clean, /readyz's "ok"-like body not empty.
    local codes file
    for n in 1 2 3 4; do
        codes=$(sort -u "$D/codes.$n")
        assert_equal "$codes" "200 0"
    done
    mkdir -p "$D/shapes"
    check_expositions "$D"/scrapes/1.* "$D"/scrapes/3.*
    # Every one counts the queue's jobs.
    awk 'FNR == 1 && NR > 1 && !found { print prev; exit 1 }
        FNR == 1 { found = 0; prev = FILENAME }
        /^workq_worker_jobs_total\{queue="q",outcome="succeeded"\} / { found = 1 }
        END { if (!found) { print prev; exit 1 } }' "$D"/scrapes/1.* "$D"/scrapes/3.* >"$D/nocount" ||
        fail "a scrape without the job count: $(cat "$D/nocount")"
    for file in "$D"/scrapes/2.* "$D"/scrapes/4.*; do
        [ -s "$file" ] || fail "$file: an empty /readyz body"
    done
    # The last /metrics scrape counts every job.
    file=$(ls -v "$D"/scrapes/1.* | tail -1)
    grep -qx 'workq_worker_jobs_total{queue="q",outcome="succeeded"} 1000' "$file" ||
        fail "last scrape: $(grep jobs_total "$file")"
    # The worker is still up and drains on SIGTERM.
    kill -TERM "$w"
    wait_exit "$w" 30
    assert_equal "$EXIT_CODE" 0
}
