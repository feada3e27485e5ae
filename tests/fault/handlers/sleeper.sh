#!/bin/sh
# Fault-suite handler: records its start in the ledger, then sleeps SECONDS ($1, default 1000)
# and succeeds (recording its end).
echo $$ >>"$FAULT_PIDS"
echo "start $WORKQ_JOB_ID $WORKQ_ATTEMPT $$" >>"$FAULT_LEDGER"
sleep "${1:-1000}"
echo "end $WORKQ_JOB_ID $WORKQ_ATTEMPT" >>"$FAULT_LEDGER"
