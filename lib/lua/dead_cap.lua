-- dead_cap: sets the dead-letter cap of a queue (0 = no cap) and applies it at once.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] max count   ARGV[3] max age ms
-- Returns the total number of dead letters trimmed so far.
local p = ARGV[1]
check_structures(p, {'dead'})
check_version(KEYS[1], true)
redis.call('HSET', KEYS[1], 'dead_max', ARGV[2], 'dead_max_age', ARGV[3])
trim_dead(p, now_ms())
return whole(redis.call('HGET', KEYS[1], 'trimmed')) or 0
