#!/bin/sh
# Fault-suite handler: floods stdout with BYTES ($1, default 4 MiB) and stderr with ERR_BYTES
# ($2, default BYTES) of short lines, then succeeds (recording its run in the ledger).
echo $$ >>"$FAULT_PIDS"
echo "start $WORKQ_JOB_ID $WORKQ_ATTEMPT $$" >>"$FAULT_LEDGER"
head -c "${1:-4194304}" /dev/zero | tr '\0' x
head -c "${2:-${1:-4194304}}" /dev/zero | tr '\0' '\n' | sed 's/^/flood /' >&2
echo "end $WORKQ_JOB_ID $WORKQ_ATTEMPT" >>"$FAULT_LEDGER"
