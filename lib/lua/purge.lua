-- purge: cancels waiting and/or scheduled jobs of a queue, at most `batch` per call, so that
-- no single call blocks the server for long; the caller repeats until nothing is left.
-- Scheduled jobs already due are waiting jobs (as stats and job_info show them): they are
-- promoted first, so `waiting` takes them and `scheduled` leaves them.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] 'waiting', 'scheduled' or 'both'   ARGV[3] batch   ARGV[4] TTL ms
-- Returns { cancelled in this call, 1 if more remain else 0 }. A record that cannot be a job is
-- dead-lettered with a reason (not counted).
local p, which = ARGV[1], ARGV[2]
local budget = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
check_structures(p, {'priorities', 'scheduled', 'running', 'dead'})
check_version(KEYS[1], false)
-- Every waiting list, checked before the first write (see "Damage" in common/helpers.lua).
for _, prio in ipairs(redis.call('ZRANGE', p .. 'priorities', 0, -1)) do
    local damage = list_damage(p, prio)
    if damage then refuse(damage) end
end
local now = now_ms()
apply_promote(p, now, promote_plan_or_refuse(p, now, 1000))
local count = 0
-- The fields purge needs; a record that cannot be a job becomes a dead letter (the caller took
-- it out of its list or set).
local function job_fields_or_dead(id)
    local job, problem = read_job(p, id, {'state', 'unique'})
    if problem and not FINAL[job.state] then
        dead_corrupt(p, id, now, problem .. ' (found when the queue was purged)')
        return {}
    end
    return job
end
if which ~= 'scheduled' then
    while budget > 0 do
        local top = redis.call('ZREVRANGE', p .. 'priorities', 0, 0)[1]
        if not top then break end
        local list = p .. 'waiting:' .. top
        local ids = redis.call('LRANGE', list, 0, budget - 1)
        redis.call('LTRIM', list, #ids, -1)
        if redis.call('LLEN', list) == 0 then redis.call('ZREM', p .. 'priorities', top) end
        for _, id in ipairs(ids) do
            local job = job_fields_or_dead(id)
            if job.state == 'waiting' then
                make_cancelled(p, id, now, job.unique, ttl)
                count = count + 1
            end
        end
        budget = budget - #ids
    end
end
if which ~= 'waiting' then
    local ids = redis.call('ZRANGE', p .. 'scheduled', 0, math.max(budget, 1) - 1)
    if budget > 0 then
        for _, id in ipairs(ids) do
            redis.call('ZREM', p .. 'scheduled', id)
            local job = job_fields_or_dead(id)
            if job.state == 'scheduled' then
                make_cancelled(p, id, now, job.unique, ttl)
                count = count + 1
            end
        end
    end
end
local more = 0
if which ~= 'scheduled' and redis.call('ZCARD', p .. 'priorities') > 0 then more = 1 end
if which ~= 'waiting' and redis.call('ZCARD', p .. 'scheduled') > 0 then more = 1 end
return {count, more}
