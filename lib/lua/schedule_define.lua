-- schedule_define: defines schedule NAME on this queue, or replaces its definition
-- (workq-schedule add). A replaced schedule keeps its pause, its last job and, when its
-- expression and zone are unchanged, its next tick: `add` run again from configuration
-- management changes nothing else. Wakes idle workers so that they learn the next tick.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] name   ARGV[3] cron expression   ARGV[4] time zone
-- ARGV[5] catch-up ('latest' or 'none')   ARGV[6] priority   ARGV[7] max attempts
-- ARGV[8] timeout ms ('' = the worker's)   ARGV[9] unique key ('' = none)   ARGV[10] payload
-- ARGV[11] the expression's first tick after the server's time (ms), computed by the caller
-- Returns { 1 created or 0 replaced, next tick ms, 1 paused or 0 }.
local p, name = ARGV[1], ARGV[2]
local first_tick = tonumber(ARGV[11])
if not first_tick or not tonumber(ARGV[6]) or not tonumber(ARGV[7]) then
    return redis.error_reply('ERR schedule_define: malformed arguments')
end
check_structures(p, {'schedules', 'ticks'})
check_version(KEYS[1], true)
local key = p .. 'schedule:' .. name
local now = now_ms()

local created, next_tick, paused, generation = 1, first_tick, false, 0
local kind = redis.call('TYPE', key).ok
if kind == 'hash' then
    local old = redis.call('HMGET', key, 'cron', 'tz', 'next', 'paused', 'gen')
    created = 0
    paused = old[4] == '1'
    -- Numbers workq did not write (see "Damage" in common/helpers.lua) start again.
    generation = whole(old[5]) or 0
    if old[1] == ARGV[3] and old[2] == ARGV[4] and whole(old[3]) then
        next_tick = whole(old[3])
    end
elseif kind ~= 'none' then
    redis.call('DEL', key)  -- not a schedule workq wrote: replaced
end

local fields = {'cron', ARGV[3], 'tz', ARGV[4], 'catch_up', ARGV[5], 'prio', ARGV[6],
                'max', ARGV[7], 'timeout', ARGV[8], 'unique', ARGV[9], 'payload', ARGV[10],
                'next', tostring(next_tick), 'gen', tostring(generation + 1), 'updated',
                tostring(now)}
if created == 1 then
    fields[#fields + 1] = 'created'
    fields[#fields + 1] = tostring(now)
end
redis.call('HSET', key, unpack(fields))
redis.call('SADD', p .. 'schedules', name)
if not paused then redis.call('ZADD', p .. 'ticks', next_tick, name) end
wake(p .. 'wake')
return {created, next_tick, paused and 1 or 0}
