-- stats: one queue's counts, in O(number of priorities) whatever the queue's length. Read-only.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] after how long (ms) a due tick counts as late
-- Returns { waiting, scheduled, running, dead, succeeded, failed, paused (0/1),
--           oldest waiting age ms (-1: none), dead letters trimmed, data version (0: none),
--           jobs succeeded in the last 60 s (estimated from this minute's and the last one's counts),
--           running jobs whose lease lapsed (overdue: the reaper of a running worker takes them back),
--           schedules (workq-schedule), the earliest tick of an unpaused one (ms; -1: none),
--           schedules whose tick is late: due for more than ARGV[2] ms (no worker fires them),
--           rate limit (starts per window; 0: none), its window ms, concurrency limit (0: none),
--           jobs claimed ahead (workq-work --claim-ahead: leased, no handler has them yet) }.
-- `running` counts the jobs a handler has: those of <p>running not marked `ahead`. Counting the
-- marked ones reads each running job's mark: O(running jobs), for an exact count that no crash
-- can make drift (the scripts keep no separate count of them).
-- Scheduled jobs already due count as waiting (a worker promotes them when it next looks).
-- A damaged queue (see "Damage" in common/helpers.lua) is refused with WORKQ_DAMAGED naming the
-- key: workq-status shows the queue as damaged, and the others as usual.
local p = ARGV[1]
check_structures(p, {'priorities', 'scheduled', 'running', 'dead', 'schedules', 'ticks', 'starts',
                     'watchers'})
local now = now_ms()
local waiting = 0
local oldest = -1
for _, prio in ipairs(redis.call('ZRANGE', p .. 'priorities', 0, -1)) do
    local list = p .. 'waiting:' .. prio
    local damage = list_damage(p, prio)
    if damage then refuse(damage) end
    waiting = waiting + redis.call('LLEN', list)
    local head = redis.call('LINDEX', list, 0)
    if head then
        -- A fresh record has no `ready`: it is its `created`. An error reply: a corrupt record.
        local f = here(redis.pcall('HMGET', p .. 'job:' .. head, 'ready', 'created'))
        local ready = type(f) == 'table' and not f.err and whole(f[1] or f[2]) or nil
        if ready and (oldest < 0 or ready < oldest) then oldest = ready end
    end
end
local due = redis.call('ZCOUNT', p .. 'scheduled', '-inf', now)
if due > 0 then
    waiting = waiting + due
    local first = tonumber(redis.call('ZRANGE', p .. 'scheduled', 0, 0, 'WITHSCORES')[2])
    if first and (oldest < 0 or first < oldest) then oldest = first end
end
local m = redis.call('HMGET', KEYS[1], 'succeeded', 'failed', 'paused', 'trimmed', 'version',
                     'rate_minute', 'rate_count', 'rate_previous', 'limit_rate', 'limit_window',
                     'limit_concurrency')
-- A newer version is shown, not refused (the tools warn); one that is not a number is damage.
if m[5] and not whole(m[5]) then refuse(KEYS[1] .. ' has a version ' .. quote(m[5]) .. ' that is not a number') end
local minute = math.floor(now / 60000)
local left_of_window = 1 - (now % 60000) / 60000  -- share of the last minute still in the window
local recent = 0
if whole(m[6]) == minute then
    recent = (whole(m[7]) or 0) + (whole(m[8]) or 0) * left_of_window
elseif whole(m[6]) == minute - 1 then
    recent = (whole(m[7]) or 0) * left_of_window
end
local running_ids = redis.call('ZRANGE', p .. 'running', 0, -1)
local ahead = 0
for _, id in ipairs(running_ids) do
    if here(redis.pcall('HGET', p .. 'job:' .. id, 'ahead')) == '1' then ahead = ahead + 1 end
end
return {
    waiting,
    redis.call('ZCARD', p .. 'scheduled') - due,
    #running_ids - ahead,
    redis.call('ZCARD', p .. 'dead'),
    whole(m[1]) or 0,
    whole(m[2]) or 0,
    m[3] == '1' and 1 or 0,
    oldest < 0 and -1 or math.max(0, now - oldest),
    whole(m[4]) or 0,
    whole(m[5]) or 0,
    math.floor(recent + 0.5),
    redis.call('ZCOUNT', p .. 'running', '-inf', now),
    redis.call('SCARD', p .. 'schedules'),
    tonumber(redis.call('ZRANGE', p .. 'ticks', 0, 0, 'WITHSCORES')[2]) or -1,
    redis.call('ZCOUNT', p .. 'ticks', '-inf', now - (tonumber(ARGV[2]) or 0)),
    -- A limit that is not a whole number is none (set_limits writes only those; claim agrees).
    whole(m[9]) or 0,
    whole(m[10]) or 0,
    whole(m[11]) or 0,
    ahead,
}
