#!/bin/sh
# Fault-suite handler: records its run in the ledger ("start ID ATTEMPT PID", and "end ID
# ATTEMPT" once its work is done), succeeds, and prints "done ID". FAULT_SLEEP (seconds) is how
# long the work takes (default: none).
echo $$ >>"$FAULT_PIDS"
echo "start $WORKQ_JOB_ID $WORKQ_ATTEMPT $$" >>"$FAULT_LEDGER"
if [ -n "${FAULT_SLEEP:-}" ]; then sleep "$FAULT_SLEEP"; fi
echo "end $WORKQ_JOB_ID $WORKQ_ATTEMPT" >>"$FAULT_LEDGER"
echo "done $WORKQ_JOB_ID"
