-- complete: holders report successes; each job becomes succeeded with its result, kept for
-- the result TTL. One call settles one job or a batch of them (a busy worker sends the
-- successes that finished while its previous settle was on the way): each job is judged and
-- recorded on its own, exactly as if it came alone.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] result TTL ms
-- ARGV[3..] one group of four per job: id, token, result bytes, bytes of the handler's output
--           dropped beyond --max-result (0: the result is whole)
-- Returns one status per job, in order: 1 succeeded; 2 already settled by this token (a
-- retried settle: nothing changes); 0 refused: the token no longer holds the job; 3 its record
-- cannot be a job: dead-lettered with the reason `corrupt`, the result kept on it.
-- This is the hot path of every job: each redis.call costs about as much as the work it does,
-- so the meta is read and written once per call, and each record read once and written once.
local p = ARGV[1]
local ttl = tonumber(ARGV[2])
local meta = read_meta(KEYS[1], {'version', 'succeeded', 'rate_minute', 'rate_count',
                                   'limit_concurrency'})
local now = now_ms()
local now_text = tostring(now)
local out = {}
local finished_running = {}  -- ids to take out of <p>running with one ZREM
local succeeded = 0
for i = 3, #ARGV, 4 do
    local id, token = ARGV[i], ARGV[i + 1]
    local verdict, job, problem = holder_check(p, id, token)
    local status = 0
    if verdict == 'duplicate' then
        status = 2
    elseif verdict == 'corrupt' then
        if dead_corrupt(p, id, now, problem .. ' (found when its holder reported a success; the ' ..
                        'result is kept on the record)', true) then
            redis.call('HSET', p .. 'job:' .. id, 'result', ARGV[i + 2])
            status = 3
        end
    elseif verdict == 'held' then
        status = 1
        succeeded = succeeded + 1
        -- A running job leaves <p>running below, in one ZREM for the batch.
        if job.state == 'running' then
            finished_running[#finished_running + 1] = id
        else
            detach_held(p, id, job)
        end
        local key = p .. 'job:' .. id
        -- The first write of the call frees memory (HDEL is never refused for lack of it), so
        -- the settle goes through when the server is at maxmemory: once a script has written,
        -- Redis lets it finish.
        redis.call('HDEL', key, 'lease', 'cancel')
        -- A job claimed ahead whose start notice has not arrived: its run counts all the same.
        if job.ahead == '1' then
            redis.call('HSET', key, 'attempts', digits(job.attempts + 1), 'ahead', '')
        end
        local dropped = ARGV[i + 3]
        if dropped ~= '0' then
            redis.call('HSET', key, 'state', 'succeeded', 'result', ARGV[i + 2], 'finished', now_text,
                       'settled', token, 'truncated', dropped)
        else
            redis.call('HSET', key, 'state', 'succeeded', 'result', ARGV[i + 2], 'finished', now_text,
                       'settled', token)
        end
        release_unique(p, id, job.unique)
        notify_final(p, id, job.notify, 'succeeded', ttl <= 0 and ARGV[i + 2] or nil)
        -- A job that never failed has no error record (add_error sets `reason` on the record).
        expire_final(p, id, ttl, not job.reason)
    end
    out[#out + 1] = status
end
-- Records of a batch may have been detached from <p>running before: ZREM ignores them.
-- A running set of another type holds none of them (see "Damage" in common/helpers.lua).
if #finished_running > 0 and not key_damage(p .. 'running', 'zset') then
    call_chunked('ZREM', p .. 'running', finished_running)
    -- A place under the queue's concurrency limit is free: wake a worker it held back (claim
    -- emptied the wake-ups while the limit was full). fail, release and reap wake anyway.
    -- (wake replaces a wake key of another type; a limit that is not a number is none.)
    if (whole(meta[5]) or 0) > 0 then wake(p .. 'wake') end
end
if succeeded > 0 then
    -- The success count, and recent throughput for workq-status (successes in this minute and
    -- the one before), in one write: the script is atomic, so read-and-set is as safe as HINCRBY.
    -- A counter that is not a number starts again (a statistic; see "Damage").
    local minute = math.floor(now / 60000)
    local counts = {'succeeded', digits((whole(meta[2]) or 0) + succeeded)}
    if whole(meta[3]) == minute then
        counts[3] = 'rate_count'; counts[4] = digits((whole(meta[4]) or 0) + succeeded)
    else
        local previous = (whole(meta[3]) == minute - 1) and (whole(meta[4]) or 0) or 0
        counts[3] = 'rate_minute'; counts[4] = digits(minute)
        counts[5] = 'rate_count'; counts[6] = digits(succeeded)
        counts[7] = 'rate_previous'; counts[8] = digits(previous)
    end
    redis.call('HSET', KEYS[1], unpack(counts))
end
return out
