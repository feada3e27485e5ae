-- release: the holder gives a job back without counting the attempt (graceful shutdown, or a
-- COMMAND that cannot be executed). It goes to the head of its waiting list: it runs next.
-- A job claimed ahead and not started (`ahead` = 1) was not counted: its count stays.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] id   ARGV[3] token   ARGV[4] result TTL ms (for cancelled)
-- Returns 1 released (or cancelled, when a user asked for it); 0 refused (lost lease); 3 its
-- record cannot be a job: dead-lettered with the reason `corrupt`.
local p, id, token = ARGV[1], ARGV[2], ARGV[3]
check_structures(p, {'priorities', 'dead'})
check_version(KEYS[1], false)
local verdict, job, problem = holder_check(p, id, token)
if verdict == 'corrupt' then
    local why = problem .. ' (found when its holder gave the job back)'
    return dead_corrupt(p, id, now_ms(), why, true) and 3 or 0
end
-- Only a job still running can be given back: one the reaper already put back to waiting, or
-- made dead when its attempts were spent, stays as the reaper left it.
if verdict ~= 'held' or job.state ~= 'running' then return 0 end
if job.cancel ~= '1' then
    -- Its waiting list, checked before the first write (see "Damage" in common/helpers.lua).
    local damage = list_damage(p, job.prio)
    if damage then refuse(damage) end
end
local now = now_ms()
detach_held(p, id, job)
local key = p .. 'job:' .. id
redis.call('HDEL', key, 'lease', 'token', 'worker', 'started', 'ahead')
-- A job claimed ahead (not started) was never counted.
if job.ahead ~= '1' then redis.call('HSET', key, 'attempts', digits(math.max(0, job.attempts - 1))) end
if job.cancel == '1' then
    make_cancelled(p, id, now, job.unique, tonumber(ARGV[4]))
    return 1
end
push_waiting(p, id, job.prio, now, true)
wake(p .. 'wake')
return 1
