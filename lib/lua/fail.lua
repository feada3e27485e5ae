-- fail: the holder reports a failed attempt (exit code, signal, timeout, bad reply). The job is
-- retried after the delay the worker computed (backoff with jitter) while attempts remain,
-- else it is dead; a permanent failure is dead at once; a job a user cancelled ends cancelled.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] id   ARGV[3] token   ARGV[4] error text   ARGV[5] reason
-- ARGV[6] retry delay ms (-1: permanent, no retry)   ARGV[7] result TTL ms (for cancelled)
-- Returns { status, state, due ms }: status 1 settled, 2 already settled by this token,
-- 0 refused (lost lease), 3 its record cannot be a job: dead-lettered with the reason
-- `corrupt` (state 'dead'); state 'scheduled', 'dead' or 'cancelled'; due ms for scheduled.
local p, id, token = ARGV[1], ARGV[2], ARGV[3]
-- Where a failed job goes, checked before the first write (see "Damage" in common/helpers.lua).
check_structures(p, {'priorities', 'scheduled', 'dead'})
check_version(KEYS[1], false)
local verdict, job, problem = holder_check(p, id, token)
if verdict == 'duplicate' then
    return {2, job.state or 'unknown', 0}
end
if verdict == 'corrupt' then
    local why = problem .. ' (found when its holder reported a failed attempt: ' .. ARGV[5] .. ')'
    if dead_corrupt(p, id, now_ms(), why, true) then return {3, 'dead', 0} end
    return {0, 'unknown', 0}
end
if verdict ~= 'held' then return {0, job.state or 'unknown', 0} end
local now = now_ms()
local delay = tonumber(ARGV[6])
detach_held(p, id, job)
local key = p .. 'job:' .. id
redis.call('HDEL', key, 'lease')
if job.ahead == '1' then
    -- Claimed ahead, its start notice not arrived: the run counts all the same.
    job.attempts = job.attempts + 1
    redis.call('HSET', key, 'settled', token, 'attempts', digits(job.attempts), 'ahead', '')
else
    redis.call('HSET', key, 'settled', token)
end
if job.cancel == '1' then
    -- A user's cancel, not a failure of the job: recorded, not counted as a failed attempt.
    add_error(p, id, now, job.attempts, 'cancelled', 'cancelled by a user while running')
    make_cancelled(p, id, now, job.unique, tonumber(ARGV[7]))
    return {1, 'cancelled', 0}
end
-- A job the reaper took back (its lease lapsed: waiting or dead now) was counted as failed
-- then; its holder's late report of the same attempt records the real error, not a second one.
if job.state == 'running' then count_up(KEYS[1], 'failed', 1) end
add_error(p, id, now, job.attempts, ARGV[5], ARGV[4])
if delay < 0 or job.attempts >= job.max then
    make_dead(p, id, now, job.unique)
    return {1, 'dead', 0}
end
local due = now + delay
redis.call('HSET', key, 'state', 'scheduled')
redis.call('ZADD', p .. 'scheduled', due, id)
wake(p .. 'wake')
return {1, 'scheduled', due}
