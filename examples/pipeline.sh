#!/bin/sh
# A pipeline on workq: checksum every file under a directory with parallel workers, then print
# "SHA256  FILE" lines in the order the files were found, and list what failed.
#
#   examples/pipeline.sh DIR [QUEUE]
#
# Each step is one tool: find feeds workq-enqueue (one job per file, NUL-separated names), a
# burst worker with 4 slots runs sha256sum per job (the payload as its last argument) and
# exits when the queue is empty, and workq-status reads each job's result by id.
set -eu
dir=${1:?usage: pipeline.sh DIR [QUEUE]}
queue=${2:-checksums}
ids=$(mktemp)
trap 'rm -f "$ids"' EXIT

# 1. Submit: one job per file; the ids come back on stdout, in input order.
find "$dir" -type f -print0 | workq-enqueue -0 --max-attempts 2 "$queue" >"$ids"

# 2. Work: run sha256sum for every due job, 4 at a time, then exit (1 if a job went dead).
status=0
workq-work -q --burst -c 4 --backoff 1s --arg "$queue" -- sha256sum || status=$?

# 3. Collect: each job's result (sha256sum's output line), in the order of the ids.
xargs workq-status job --json <"$ids" | jq -r 'select(.state == "succeeded") | .result' |
    tr -d '\r' | sed '/^$/d'

# 4. Report what failed: dead letters stay until removed (`workq-dlq requeue` after a fix).
if [ "$status" -ne 0 ]; then
    echo "pipeline.sh: some files failed:" >&2
    workq-dlq ls "$queue" >&2
fi
exit "$status"
