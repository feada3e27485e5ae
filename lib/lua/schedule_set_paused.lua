-- schedule_set_paused: pauses schedule NAME (no tick fires) or resumes it from its next tick
-- after now, so that the ticks missed while paused make no job (workq-schedule pause, resume).
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] name   ARGV[3] '1' pause, '0' resume
-- ARGV[4] resume: the expression's first tick after the server's time (ms), computed by the
--         caller
-- Returns 1 when the state changed, 0 when it already was so, -1 when the queue has no such
-- schedule.
local p, name = ARGV[1], ARGV[2]
local pause = ARGV[3] == '1'
local first_tick = tonumber(ARGV[4])
if not pause and not first_tick then
    return redis.error_reply('ERR schedule_set_paused: malformed arguments')
end
check_structures(p, {'ticks'})
check_version(KEYS[1], false)
local key = p .. 'schedule:' .. name
if redis.call('TYPE', key).ok ~= 'hash' then return -1 end
local was = redis.call('HGET', key, 'paused') == '1'
if was == pause then return 0 end
check_version(KEYS[1], true)
if pause then
    redis.call('HSET', key, 'paused', '1')
    redis.call('ZREM', p .. 'ticks', name)
else
    redis.call('HDEL', key, 'paused')
    redis.call('HSET', key, 'next', tostring(first_tick))
    redis.call('ZADD', p .. 'ticks', first_tick, name)
    wake(p .. 'wake')
end
return 1
