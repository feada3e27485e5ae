#!/bin/sh
# Fault-suite handler that will not stop politely: ignores SIGTERM, forks a grandchild that
# ignores it too, records both pids, and runs until killed.
trap '' TERM
echo $$ >>"$FAULT_PIDS"
echo "start $WORKQ_JOB_ID $WORKQ_ATTEMPT $$" >>"$FAULT_LEDGER"
sh -c 'trap "" TERM; while :; do sleep 0.2; done' &
echo $! >>"$FAULT_PIDS"
while :; do sleep 0.2; done
