# fish completion for workq and its tools (loaded for `workq`; the tools' files source it):
# flags and subcommands always; queue and schedule names from the server when one is configured
# or the embedded one already runs (never starting one), within a second
# (WORKQ_COMPLETION_TIMEOUT); time zones from /usr/share/zoneinfo.

function __workq_server_known
    test -n "$WORKQ_REDIS_URL$REDIS_URL$WORKQ_CONFIG"; and return 0
    string match -q -r -- '--(redis|config)' (commandline -opc); and return 0
    set -l config_home $XDG_CONFIG_HOME
    test -n "$config_home"; or set config_home $HOME/.config
    test -f /etc/workq/config.toml -o -f $config_home/workq/config.toml; and return 0
    set -l state_home $XDG_STATE_HOME
    test -n "$state_home"; or set state_home $HOME/.local/state
    set -l record $state_home/workq/socket
    test -r $record; and test -S (head -n1 $record)
end

function __workq_queues
    __workq_server_known; or return
    command -q workq-status; or return
    set -l timeout $WORKQ_COMPLETION_TIMEOUT
    test -n "$timeout"; or set timeout 1
    set -l connection
    set -l words (commandline -opc)
    for i in (seq (count $words))
        switch $words[$i]
            case --redis --namespace --config
                set -a connection $words[$i] $words[(math $i + 1)]
            case '--redis=*' '--namespace=*' '--config=*'
                set -a connection $words[$i]
        end
    end
    timeout $timeout workq-status -q $connection --prometheus 2>/dev/null |
        string replace -r -f '^workq_queue_waiting\{.*queue="([^"]*)".*' '$1'
end

function __workq_schedules
    __workq_server_known; or return
    command -q workq-schedule; or return
    set -l timeout $WORKQ_COMPLETION_TIMEOUT
    test -n "$timeout"; or set timeout 1
    set -l connection
    set -l words (commandline -opc)
    for i in (seq (count $words))
        switch $words[$i]
            case --redis --namespace --config
                set -a connection $words[$i] $words[(math $i + 1)]
            case '--redis=*' '--namespace=*' '--config=*'
                set -a connection $words[$i]
        end
    end
    timeout $timeout workq-schedule -q $connection ls 2>/dev/null | tail -n +2 |
        string replace -r ' .*' ''
end

function __workq_zones
    test -d /usr/share/zoneinfo; or return
    pushd /usr/share/zoneinfo
    find . -type f ! -name '*.*' ! -path './posix/*' ! -path './right/*' 2>/dev/null |
        string replace -r '^\./' '' | string match -r '^[A-Z].*'
    popd
end

# __workq_operands TOOL: how many operands the command line has so far (for the tool given).
function __workq_operands
    set -l words (commandline -opc)
    set -e words[1]
    test "$words[1]" = "$argv[1]"; and set -e words[1]  # `workq TOOL`
    set -l n 0
    set -l skip 0
    for word in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case --redis --password-file --tls-ca-cert --tls-cert --tls-key --tls-server-name \
                --namespace --config --log-level --log-format \
                --priority --delay --at --max-attempts --timeout --unique --id --wait-timeout \
                --replicas --replicas-timeout \
                --max-payload -c --concurrency --claim-ahead --kill-grace --lease --backoff \
                --permanent-exit-codes --max-jobs --max-runtime --shutdown-timeout --on-start \
                --on-stop --health-cmd --health-interval --name --max-result --result-ttl \
                --recycle-jobs --recycle-age --recycle-errors --summary-interval \
                --pause-after-failures --failure-cooldown --http --max-depth \
                --warn-max-depth \
                --max-age --warn-max-age --min-workers --warn-min-workers --max-dead \
                --warn-max-dead --worker --state --limit --older-than --newer-than \
                --error-match --max-count --cron --tz --catch-up --count
                set skip 1
            case '-*'
            case '*'
                set n (math $n + 1)
        end
    end
    echo $n
end

function __workq_tool_is
    set -l words (commandline -opc)
    test (basename -- $words[1]) = workq-$argv[1]; and return 0
    test (basename -- $words[1]) = workq; and test "$words[2]" = $argv[1]
end

function __workq_no_operand -a tool
    __workq_tool_is $tool; and test (__workq_operands $tool) -eq 0
end

function __workq_sub -a tool sub
    __workq_tool_is $tool; or return 1
    set -l words (commandline -opc)
    contains -- $sub $words
end

# __workq_o TOOL ARGS...: a completion of TOOL, for workq-TOOL and for `workq TOOL`.
function __workq_o -a tool
    complete -c workq-$tool $argv[2..-1]
    complete -c workq -n "__fish_seen_subcommand_from $tool" $argv[2..-1]
end

complete -c workq -f
complete -c workq -n __fish_use_subcommand -a enqueue -d 'Submit jobs'
complete -c workq -n __fish_use_subcommand -a work -d 'Run a worker'
complete -c workq -n __fish_use_subcommand -a queue -d 'List, cancel, purge live jobs; pause, resume'
complete -c workq -n __fish_use_subcommand -a dlq -d 'Inspect, requeue and delete dead letters'
complete -c workq -n __fish_use_subcommand -a status -d 'Queue depths, latency, worker health'
complete -c workq -n __fish_use_subcommand -a schedule -d 'Periodic jobs from cron expressions'

# Options every tool has.
for tool in enqueue work queue dlq status schedule
    complete -c workq-$tool -f
    __workq_o $tool -l redis -x -d 'Redis server URL'
    __workq_o $tool -l password-file -r -F -d 'Read the Redis password from this file'
    __workq_o $tool -l tls-ca-cert -r -F -d 'rediss://: trust the CA certificates in this file'
    __workq_o $tool -l tls-cert -r -F -d 'rediss://: present this client certificate'
    __workq_o $tool -l tls-key -r -F -d "rediss://: the client certificate's key"
    __workq_o $tool -l tls-server-name -x -d "rediss://: the name to verify the server's certificate for"
    __workq_o $tool -l namespace -x -d "Key prefix of all of workq's keys"
    __workq_o $tool -l config -r -F -d 'Read only this config file'
    __workq_o $tool -s q -l quiet -d 'Print errors only on stderr'
    __workq_o $tool -l log-level -x -a 'debug info warn error' -d 'Log level'
    __workq_o $tool -l log-format -x -a 'human json' -d 'Log format'
    __workq_o $tool -l version -d 'Print the version and exit'
    __workq_o $tool -s h -l help -d 'Print help and exit'
end

# workq-enqueue
__workq_o enqueue -l priority -x -d 'Higher runs first'
__workq_o enqueue -l delay -x -d 'Run no earlier than this from now'
__workq_o enqueue -l at -x -d 'Run no earlier than this time'
__workq_o enqueue -l max-attempts -x -d 'Total runs before the job is dead'
__workq_o enqueue -l timeout -x -d 'Per-run time limit for this job'
__workq_o enqueue -l unique -x -d 'Make no other job with this key'
__workq_o enqueue -l id -x -d 'Use this id'
__workq_o enqueue -l wait -d 'Block until the jobs end; print results'
__workq_o enqueue -l wait-timeout -x -d 'With --wait: give up after this long'
__workq_o enqueue -l replicas -x -d 'Wait until this many replicas have the jobs'
__workq_o enqueue -l replicas-timeout -x -d 'With --replicas: how long to wait'
__workq_o enqueue -s 0 -l null -d 'Read NUL-separated payloads'
__workq_o enqueue -l whole -d 'All of stdin is one job'
__workq_o enqueue -l max-payload -x -d 'Largest payload accepted'
__workq_o enqueue -n '__workq_no_operand enqueue' -a '(__workq_queues)' -d queue

# workq-work
__workq_o work -s c -l concurrency -x -d 'Jobs run at once'
__workq_o work -l claim-ahead -x -d 'Jobs held leased beyond the busy slots (0: off)'
__workq_o work -l timeout -x -d 'Time limit per job run'
__workq_o work -l kill-grace -x -d 'Wait between SIGTERM and SIGKILL'
__workq_o work -l lease -x -d 'Lease per claimed job'
__workq_o work -l backoff -x -d 'Retry delay BASE[,CAP]'
__workq_o work -l permanent-exit-codes -x -d 'Exit codes that mean dead at once'
__workq_o work -l arg -d 'Pass the payload as the last argument'
__workq_o work -l burst -d 'Work off every due job, then exit'
__workq_o work -l max-jobs -x -d 'Exit after this many jobs'
__workq_o work -l max-runtime -x -d 'Drain and exit after running this long'
__workq_o work -l shutdown-timeout -x -d 'Time allowed to drain on SIGTERM'
__workq_o work -l on-start -x -a '(__fish_complete_command)' -d 'Shell command run before claiming'
__workq_o work -l on-stop -x -a '(__fish_complete_command)' -d 'Shell command run before exiting'
__workq_o work -l health-cmd -x -a '(__fish_complete_command)' -d 'Health check shell command'
__workq_o work -l health-interval -x -d 'How often the health check runs'
__workq_o work -l pause-after-failures -x -d 'Pause after this many failed jobs in a row'
__workq_o work -l failure-cooldown -x -d 'How long the breaker pauses (doubles per trip)'
__workq_o work -l http -x -d 'Serve /livez, /readyz, /metrics and / over HTTP on ADDR'
__workq_o work -l name -x -d 'Worker name'
__workq_o work -l max-result -x -d 'Largest result kept'
__workq_o work -l result-ttl -x -d 'How long a succeeded job stays visible'
__workq_o work -l persistent -d 'One long-lived handler per slot'
__workq_o work -l recycle-jobs -x -d 'Replace a persistent handler after this many jobs'
__workq_o work -l recycle-age -x -d 'Replace a persistent handler after this long'
__workq_o work -l recycle-errors -x -d 'Replace a persistent handler after this many failures'
__workq_o work -l summary-interval -x -d 'How often a summary line is logged'
__workq_o work -n '__workq_no_operand work' -a '(__workq_queues)' -d queue
__workq_o work -n '__workq_sub work --' -a '(__fish_complete_command)'

# workq-queue
set -l queue_subs ls cancel purge pause resume rm limit
__workq_o queue -n "not __fish_seen_subcommand_from $queue_subs" -a ls -d 'List live jobs'
__workq_o queue -n "not __fish_seen_subcommand_from $queue_subs" -a cancel -d 'Cancel jobs'
__workq_o queue -n "not __fish_seen_subcommand_from $queue_subs" -a purge -d 'Cancel every waiting/scheduled job'
__workq_o queue -n "not __fish_seen_subcommand_from $queue_subs" -a pause -d 'No worker claims until resume'
__workq_o queue -n "not __fish_seen_subcommand_from $queue_subs" -a resume -d 'Let workers claim again'
__workq_o queue -n "not __fish_seen_subcommand_from $queue_subs" -a rm -d 'Remove a queue that holds nothing'
__workq_o queue -n "not __fish_seen_subcommand_from $queue_subs" -a limit -d 'Fleet-wide rate and concurrency limits'
__workq_o queue -n '__fish_seen_subcommand_from ls' -l state -x -a 'waiting scheduled running' -d 'Only jobs in this state'
__workq_o queue -n '__fish_seen_subcommand_from ls' -l limit -x -d 'At most this many'
__workq_o queue -n '__fish_seen_subcommand_from ls' -l json -d 'One JSON object per line'
__workq_o queue -n '__fish_seen_subcommand_from ls' -l ids -d 'Only the ids, one per line'
__workq_o queue -n '__fish_seen_subcommand_from ls' -l no-header -d 'No header line'
__workq_o queue -n '__fish_seen_subcommand_from purge' -l waiting -d 'Only waiting jobs'
__workq_o queue -n '__fish_seen_subcommand_from purge' -l scheduled -d 'Only scheduled jobs'
__workq_o queue -n '__fish_seen_subcommand_from purge' -s y -l yes -d 'Do not ask'
__workq_o queue -n '__fish_seen_subcommand_from pause resume limit' -l create -d 'A queue never seen'
__workq_o queue -n '__fish_seen_subcommand_from limit' -l rate -x -d 'At most N starts in any DURATION (N/DURATION)'
__workq_o queue -n '__fish_seen_subcommand_from limit' -l concurrency -x -d 'At most N running at once'
__workq_o queue -n '__fish_seen_subcommand_from rm' -l force -d 'Also when it holds jobs'
__workq_o queue -n '__fish_seen_subcommand_from ls purge pause resume rm limit' -a '(__workq_queues)' -d queue

# workq-dlq
set -l dlq_subs ls show requeue rm count export import cap
__workq_o dlq -n "not __fish_seen_subcommand_from $dlq_subs" -a ls -d 'List dead letters'
__workq_o dlq -n "not __fish_seen_subcommand_from $dlq_subs" -a show -d 'Show dead letters'
__workq_o dlq -n "not __fish_seen_subcommand_from $dlq_subs" -a requeue -d 'Requeue dead letters'
__workq_o dlq -n "not __fish_seen_subcommand_from $dlq_subs" -a rm -d 'Delete dead letters'
__workq_o dlq -n "not __fish_seen_subcommand_from $dlq_subs" -a count -d 'Number of dead letters'
__workq_o dlq -n "not __fish_seen_subcommand_from $dlq_subs" -a export -d 'Dead letters as JSON lines'
__workq_o dlq -n "not __fish_seen_subcommand_from $dlq_subs" -a import -d 'Enqueue an export'
__workq_o dlq -n "not __fish_seen_subcommand_from $dlq_subs" -a cap -d 'Cap the dead letters kept'
__workq_o dlq -n '__fish_seen_subcommand_from ls' -l limit -x -d 'At most this many'
__workq_o dlq -n '__fish_seen_subcommand_from ls show' -l json -d 'One JSON object per line'
__workq_o dlq -n '__fish_seen_subcommand_from ls' -l ids -d 'Only the ids, one per line'
__workq_o dlq -n '__fish_seen_subcommand_from ls' -l no-header -d 'No header line'
__workq_o dlq -n '__fish_seen_subcommand_from requeue rm' -l all -d 'Every dead letter of the queue'
__workq_o dlq -n '__fish_seen_subcommand_from ls requeue rm export' -l older-than -x -d 'Died more than this ago'
__workq_o dlq -n '__fish_seen_subcommand_from ls requeue rm export' -l newer-than -x -d 'Died less than this ago'
__workq_o dlq -n '__fish_seen_subcommand_from ls requeue rm export' -l error-match -x -d 'Error matches this regex'
__workq_o dlq -n '__fish_seen_subcommand_from import' -l new-ids -d 'Give each job a new id'
__workq_o dlq -n '__fish_seen_subcommand_from cap' -l max-count -x -d 'Keep at most this many'
__workq_o dlq -n '__fish_seen_subcommand_from cap' -l max-age -x -d 'Keep none older than this'
__workq_o dlq -n '__fish_seen_subcommand_from ls requeue rm count export import cap' -a '(__workq_queues)' -d queue

# workq-status
__workq_o status -n 'not __fish_seen_subcommand_from job' -a job -d 'Show jobs by id'
__workq_o status -l json -d 'One JSON document'
__workq_o status -n 'not __fish_seen_subcommand_from job' -l prometheus -d 'Prometheus exposition format'
__workq_o status -n 'not __fish_seen_subcommand_from job' -l watch -d 'Refresh until q (--watch=1s)'
__workq_o status -n 'not __fish_seen_subcommand_from job' -l check -d 'Monitoring verdict'
for threshold in max-depth max-age min-workers max-dead
    __workq_o status -n 'not __fish_seen_subcommand_from job' -l $threshold -x -d "--check: critical level"
    __workq_o status -n 'not __fish_seen_subcommand_from job' -l warn-$threshold -x -d "--check: warning level"
end
__workq_o status -n 'not __fish_seen_subcommand_from job' -l worker -x -d 'This worker must be live'
__workq_o status -n 'not __fish_seen_subcommand_from job' -l no-server-warnings -d '--check: server configuration does not warn'
__workq_o status -n 'not __fish_seen_subcommand_from job' -l serve -x -d 'Serve /metrics and /livez over HTTP on ADDR'
__workq_o status -n 'not __fish_seen_subcommand_from job' -a '(__workq_queues)' -d queue

# workq-schedule
set -l schedule_subs add ls rm pause resume next
__workq_o schedule -n "not __fish_seen_subcommand_from $schedule_subs" -a add -d 'Define or replace a schedule'
__workq_o schedule -n "not __fish_seen_subcommand_from $schedule_subs" -a ls -d 'List schedules'
__workq_o schedule -n "not __fish_seen_subcommand_from $schedule_subs" -a rm -d 'Remove schedules'
__workq_o schedule -n "not __fish_seen_subcommand_from $schedule_subs" -a pause -d 'Stop firing until resume'
__workq_o schedule -n "not __fish_seen_subcommand_from $schedule_subs" -a resume -d 'Fire again from the next tick'
__workq_o schedule -n "not __fish_seen_subcommand_from $schedule_subs" -a next -d 'Next tick times'
__workq_o schedule -n '__fish_seen_subcommand_from add' -l cron -x -d 'Five crontab fields, @daily, @every 5m'
__workq_o schedule -n '__fish_seen_subcommand_from add' -l tz -x -a '(__workq_zones)' -d 'IANA time zone'
__workq_o schedule -n '__fish_seen_subcommand_from add' -l catch-up -x -a 'latest none' -d 'Ticks missed while no worker ran'
__workq_o schedule -n '__fish_seen_subcommand_from add' -l priority -x -d "The jobs' priority"
__workq_o schedule -n '__fish_seen_subcommand_from add' -l max-attempts -x -d "The jobs' total runs"
__workq_o schedule -n '__fish_seen_subcommand_from add' -l timeout -x -d "The jobs' per-run limit"
__workq_o schedule -n '__fish_seen_subcommand_from add' -l unique -x -d 'No job while one with this key is live'
__workq_o schedule -n '__fish_seen_subcommand_from ls' -l json -d 'One JSON object per line'
__workq_o schedule -n '__fish_seen_subcommand_from next' -l count -x -d 'How many'
__workq_o schedule -n '__fish_seen_subcommand_from ls' -a '(__workq_queues)' -d queue
__workq_o schedule -n '__fish_seen_subcommand_from add; and test (__workq_operands schedule) -eq 2' -a '(__workq_queues)' -d queue
__workq_o schedule -n '__fish_seen_subcommand_from rm pause resume next' -a '(__workq_schedules)' -d schedule
