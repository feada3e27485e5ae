#!/bin/sh
# Fault-suite handler with a poison pill: a job whose payload is "poison" kills its own worker
# (kill -9 of the parent); any other job succeeds like ledger.sh.
echo $$ >>"$FAULT_PIDS"
echo "start $WORKQ_JOB_ID $WORKQ_ATTEMPT $$" >>"$FAULT_LEDGER"
if [ "$(cat)" = poison ]; then
    kill -9 "$PPID"
    sleep 1000
fi
echo "end $WORKQ_JOB_ID $WORKQ_ATTEMPT" >>"$FAULT_LEDGER"
echo "done $WORKQ_JOB_ID"
