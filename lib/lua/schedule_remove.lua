-- schedule_remove: removes schedule NAME from this queue (workq-schedule rm; add moving a
-- schedule to another queue). A worker firing it at the same moment either ran first (the
-- tick's job exists) or finds no schedule and makes nothing. Jobs already made stay.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] name
-- Returns 1 when removed, 0 when the queue has no such schedule.
local p, name = ARGV[1], ARGV[2]
check_structures(p, {'schedules', 'ticks'})
check_version(KEYS[1], false)
local removed = redis.call('SREM', p .. 'schedules', name)
redis.call('ZREM', p .. 'ticks', name)
if redis.call('DEL', p .. 'schedule:' .. name) == 1 then removed = 1 end
return removed
