-- complete: the holder reports success; the job becomes succeeded with its result, kept for
-- the result TTL.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] id   ARGV[3] token   ARGV[4] result bytes   ARGV[5] result TTL ms
-- ARGV[6] bytes of the handler's output dropped beyond --max-result (0: the result is whole)
-- Returns 1 succeeded; 2 already settled by this token (a retried settle: nothing changes);
-- 0 refused: the token no longer holds the job.
local p, id, token = ARGV[1], ARGV[2], ARGV[3]
check_version(KEYS[1], false)
local verdict, job = holder_check(p, id, token)
if verdict == 'duplicate' then return 2 end
if verdict ~= 'held' then return 0 end
local now = now_ms()
-- First write frees memory (ZREM/LREM), so the settle still goes through when the server is
-- at maxmemory: once a script has written, Redis lets it finish.
detach_held(p, id, job)
local key = p .. 'job:' .. id
redis.call('HDEL', key, 'lease', 'cancel')
redis.call('HSET', key, 'state', 'succeeded', 'result', ARGV[4], 'finished', now, 'settled', token)
if tonumber(ARGV[6] or '0') > 0 then redis.call('HSET', key, 'truncated', ARGV[6]) end
redis.call('HINCRBY', KEYS[1], 'succeeded', 1)
-- Recent throughput for workq-status: successes in this minute and the one before.
local minute = math.floor(now / 60000)
local rate = redis.call('HMGET', KEYS[1], 'rate_minute', 'rate_count')
if tonumber(rate[1]) == minute then
    redis.call('HINCRBY', KEYS[1], 'rate_count', 1)
else
    local previous = (tonumber(rate[1]) == minute - 1) and (tonumber(rate[2]) or 0) or 0
    redis.call('HSET', KEYS[1], 'rate_minute', minute, 'rate_count', 1, 'rate_previous', previous)
end
release_unique(p, id, job.unique)
notify_final(p, id)
expire_final(p, id, tonumber(ARGV[5]))
return 1
