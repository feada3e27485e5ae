-- set_paused: pauses or resumes a queue for every worker (kept on the server). Resuming wakes
-- idle workers at once.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] '1' pause, '0' resume
-- Returns 1 when the state changed, 0 when it already was so.
local p = ARGV[1]
check_structures(p)
check_version(KEYS[1], true)
local was = redis.call('HGET', KEYS[1], 'paused') == '1'
local pause = ARGV[2] == '1'
if was == pause then return 0 end
redis.call('HSET', KEYS[1], 'paused', pause and '1' or '0')
if not pause then
    -- A wake key of another type holds no job: replaced.
    if key_damage(p .. 'wake', 'list') then redis.call('DEL', p .. 'wake') end
    redis.call('RPUSH', p .. 'wake', '1')
end
return 1
