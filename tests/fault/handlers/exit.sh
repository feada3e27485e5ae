#!/bin/sh
# Fault-suite handler: records its start in the ledger and exits with status K ($1).
echo $$ >>"$FAULT_PIDS"
echo "start $WORKQ_JOB_ID $WORKQ_ATTEMPT $$" >>"$FAULT_LEDGER"
echo "failing with $1" >&2
exit "$1"
