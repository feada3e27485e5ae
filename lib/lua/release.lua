-- release: the holder gives a job back without counting the attempt (graceful shutdown, or a
-- COMMAND that cannot be executed). It goes to the head of its waiting list: it runs next.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] id   ARGV[3] token   ARGV[4] result TTL ms (for cancelled)
-- Returns 1 released (or cancelled, when a user asked for it); 0 refused (lost lease).
local p, id, token = ARGV[1], ARGV[2], ARGV[3]
check_version(KEYS[1], false)
local verdict, job = holder_check(p, id, token)
-- Only a job still running can be given back: one the reaper already put back to waiting, or
-- made dead when its attempts were spent, stays as the reaper left it.
if verdict ~= 'held' or job.state ~= 'running' then return 0 end
local now = now_ms()
detach_held(p, id, job)
local key = p .. 'job:' .. id
redis.call('HDEL', key, 'lease', 'token', 'worker', 'started')
redis.call('HSET', key, 'attempts', math.max(0, job.attempts - 1))
if job.cancel == '1' then
    make_cancelled(p, id, now, job.unique, tonumber(ARGV[4]))
    return 1
end
push_waiting(p, id, job.prio, now, true)
wake(p .. 'wake')
return 1
