-- complete: the holder reports success; the job becomes succeeded with its result, kept for
-- the result TTL.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] id   ARGV[3] token   ARGV[4] result bytes   ARGV[5] result TTL ms
-- ARGV[6] bytes of the handler's output dropped beyond --max-result (0: the result is whole)
-- Returns 1 succeeded; 2 already settled by this token (a retried settle: nothing changes);
-- 0 refused: the token no longer holds the job.
-- This is the hot path of every job: each redis.call costs about as much as the work it does,
-- so the meta and the record are each read once and written once.
local p, id, token = ARGV[1], ARGV[2], ARGV[3]
local meta = redis.call('HMGET', KEYS[1], 'version', 'succeeded', 'rate_minute', 'rate_count')
check_version(KEYS[1], false, meta[1])
local verdict, job = holder_check(p, id, token)
if verdict == 'duplicate' then return 2 end
if verdict ~= 'held' then return 0 end
local now = now_ms()
-- First write frees memory (ZREM/LREM), so the settle still goes through when the server is
-- at maxmemory: once a script has written, Redis lets it finish.
detach_held(p, id, job)
local key = p .. 'job:' .. id
redis.call('HDEL', key, 'lease', 'cancel')
local fields = {'state', 'succeeded', 'result', ARGV[4], 'finished', tostring(now), 'settled', token}
if tonumber(ARGV[6] or '0') > 0 then fields[#fields + 1] = 'truncated'; fields[#fields + 1] = ARGV[6] end
redis.call('HSET', key, unpack(fields))
-- The success count, and recent throughput for workq-status (successes in this minute and the
-- one before), in one write: the script is atomic, so read-and-set is as safe as HINCRBY.
local minute = math.floor(now / 60000)
local counts = {'succeeded', tostring((tonumber(meta[2]) or 0) + 1)}
if tonumber(meta[3]) == minute then
    counts[3] = 'rate_count'; counts[4] = tostring((tonumber(meta[4]) or 0) + 1)
else
    local previous = (tonumber(meta[3]) == minute - 1) and (tonumber(meta[4]) or 0) or 0
    counts[3] = 'rate_minute'; counts[4] = tostring(minute)
    counts[5] = 'rate_count'; counts[6] = '1'
    counts[7] = 'rate_previous'; counts[8] = tostring(previous)
end
redis.call('HSET', KEYS[1], unpack(counts))
release_unique(p, id, job.unique)
notify_final(p, id, job.notify)
-- A job that never failed has no error record (add_error sets `reason` on the record).
expire_final(p, id, tonumber(ARGV[5]), not job.reason)
return 1
