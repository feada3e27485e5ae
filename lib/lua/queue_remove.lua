-- queue_remove: removes what is left of a queue once it holds no job to run and no dead letter:
-- its meta (counters, paused, caps), the priorities and wake keys, and its empty structures.
-- Job records of ended jobs (succeeded, cancelled) stay until their TTL: `workq-status job`
-- still finds them. The caller takes the queue out of the namespace's set of queues itself (a
-- key of another slot), before this call, and puts it back when this refuses.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] '1': running jobs do not refuse (--force: they were told to stop)
-- Returns { removed (1/0), waiting, scheduled, running, dead, schedules }: the counts that
-- refused it (all zero when it removed the queue). Reads everything before its first write.
local p = ARGV[1]
local force = ARGV[2] == '1'
-- A damaged queue is refused (see "Damage" in common/helpers.lua): what it holds is unknown.
check_structures(p, {'priorities', 'scheduled', 'running', 'dead', 'schedules', 'ticks'})
check_version(KEYS[1], false)
local waiting = 0
local priorities = redis.call('ZRANGE', p .. 'priorities', 0, -1)
for _, prio in ipairs(priorities) do
    local damage = list_damage(p, prio)
    if damage then refuse(damage) end
    waiting = waiting + redis.call('LLEN', p .. 'waiting:' .. prio)
end
local scheduled = redis.call('ZCARD', p .. 'scheduled')
local running = redis.call('ZCARD', p .. 'running')
local dead = redis.call('ZCARD', p .. 'dead')
local schedules = redis.call('SCARD', p .. 'schedules')
if waiting > 0 or scheduled > 0 or dead > 0 or schedules > 0 or (running > 0 and not force) then
    return {0, waiting, scheduled, running, dead, schedules}
end
for _, prio in ipairs(priorities) do
    redis.call('DEL', p .. 'waiting:' .. prio)
end
redis.call('DEL', KEYS[1], p .. 'priorities', p .. 'wake', p .. 'scheduled', p .. 'dead',
           p .. 'ticks', p .. 'schedules')
return {1, 0, 0, running, 0, 0}
