-- set_limits: sets or clears a queue's fleet-wide limits (workq-queue limit), kept in its meta
-- and read by every claim. Loosening or clearing one wakes idle workers at once.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] rate: jobs per window ('' unchanged, '0' none)
-- ARGV[3] rate window ms (with ARGV[2])   ARGV[4] concurrency ('' unchanged, '0' none)
-- Returns { rate (0: none), window ms (0: none), concurrency (0: none) } as they now are.
local p = ARGV[1]
-- Checked before the first write (see "Damage" in common/helpers.lua).
check_structures(p, {'starts'})
check_version(KEYS[1], true)
if ARGV[2] ~= '' then
    if ARGV[2] == '0' then
        redis.call('HDEL', KEYS[1], 'limit_rate', 'limit_window')
        -- The log of starts means nothing without a limit; a new limit starts from now.
        redis.call('DEL', p .. 'starts')
    else
        redis.call('HSET', KEYS[1], 'limit_rate', ARGV[2], 'limit_window', ARGV[3])
    end
end
if ARGV[4] ~= '' then
    if ARGV[4] == '0' then
        redis.call('HDEL', KEYS[1], 'limit_concurrency')
    else
        redis.call('HSET', KEYS[1], 'limit_concurrency', ARGV[4])
    end
end
-- Workers held back wake and claim again under the new limits (one that the rate held learns
-- them at its next claim, within 5 s).
wake(p .. 'wake')
local m = redis.call('HMGET', KEYS[1], 'limit_rate', 'limit_window', 'limit_concurrency')
-- A limit that is not a whole number is none (claim and stats agree).
return {whole(m[1]) or 0, whole(m[2]) or 0, whole(m[3]) or 0}
