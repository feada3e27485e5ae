-- reap: takes back jobs whose lease lapsed: their worker vanished, froze or was cut off. A job
-- is taken back when its own lease lapses, never earlier: a worker whose heartbeat went silent
-- (lost in the registry) may only be frozen or partitioned, and a longer --lease is a promise
-- that its holder has that long. The lapse counts as an attempt (it was counted at claim); the
-- job goes back to the head of its waiting list, or is dead when attempts are spent, or
-- cancelled when a user asked for it. A job claimed ahead that never started (`ahead` = 1) was
-- not counted: it goes back to the head of its list uncounted, with no error recorded, whatever
-- its attempts (a --max-attempts 1 job still runs). The token stays on the record, so that a holder that
-- merely froze may still settle the job if nobody claimed it since.
-- Also promotes due scheduled jobs, so that counts stay true while no worker claims, and applies
-- the dead-letter cap, so that dead letters age out even while none die. A running
-- job whose record cannot be a job becomes a dead letter with a reason.
-- At most `limit` jobs per call, so that one call never holds the server long: the caller
-- calls again at once while `more` says that lapsed leases remain.
-- Everything is read and checked first, then written (see "Damage" in common/helpers.lua): the
-- meta, scheduled and running by the reads that come first (a key of another type fails its
-- read), priorities and dead by their types only when there is something to move (an idle
-- worker's reaper costs its reads), dead also when a dead-letter cap is set (trim_dead).
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] limit   ARGV[3] result TTL ms
-- Returns { jobs taken back (dead-lettered corrupt records included), more (1: call again) }.
local p = ARGV[1]
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local meta = read_meta(KEYS[1], {'version', 'dead_max', 'dead_max_age', 'failed'})
local now = now_ms()
local due = read_or_refuse(p .. 'scheduled', 'zset', 'ZRANGEBYSCORE', '-inf', tostring(now), 'LIMIT', '0', '1000')
local lapsed = read_or_refuse(p .. 'running', 'zset', 'ZRANGEBYSCORE', '-inf', now, 'LIMIT', 0, limit)
local damage = #lapsed > 0 and structure_damage(p, {'priorities', 'dead'})
if not damage and ((whole(meta[2]) or 0) > 0 or (whole(meta[3]) or 0) > 0) then
    damage = key_damage(p .. 'dead', 'zset')
end
if damage then refuse(damage) end
local promotion = promote_plan_or_refuse(p, now, 1000, due)

local jobs = {}
local lists = {}
for i, id in ipairs(lapsed) do
    local job, problem = read_job(p, id, {'state', 'attempts', 'max', 'prio', 'unique', 'cancel', 'worker', 'ahead'})
    if problem and not FINAL[job.state] then
        job.corrupt = problem .. ' (found when its lease was reaped)'
    elseif problem then
        job.state = 'ended'  -- a stale entry, dropped
    elseif job.state == 'running' and job.cancel ~= '1' and
           (job.attempts < job.max or job.ahead == '1') and not lists[job.prio] then
        local damage = list_damage(p, job.prio)
        if damage then refuse(damage) end
        lists[job.prio] = true
    end
    jobs[i] = job
end

-- The first write.
apply_promote(p, now, promotion)
trim_dead(p, now, {meta[2], meta[3]})
local count, failed = 0, 0
for i, id in ipairs(lapsed) do
    local job = jobs[i]
    if redis.call('ZREM', p .. 'running', id) == 1 then
        if job.corrupt then
            count = count + 1
            dead_corrupt(p, id, now, job.corrupt, job.state ~= 'running')
        elseif job.state == 'running' and job.ahead == '1' then
            -- Claimed ahead and never started (or its start notice never arrived): uncounted,
            -- back to the head of its list; the mark stays until the next claim (its holder,
            -- if merely frozen, may still settle it, and that counts the run).
            count = count + 1
            redis.call('HDEL', p .. 'job:' .. id, 'lease')
            if job.cancel == '1' then
                make_cancelled(p, id, now, job.unique, ttl)
            else
                push_waiting(p, id, job.prio, now, true)
                wake(p .. 'wake')
            end
        elseif job.state == 'running' then
            count = count + 1
            failed = failed + 1
            redis.call('HDEL', p .. 'job:' .. id, 'lease')
            add_error(p, id, now, job.attempts, 'lease',
                      'the lease lapsed: worker ' .. (job.worker or '?') .. ' stopped renewing it (killed, frozen or cut off)')
            if job.cancel == '1' then
                make_cancelled(p, id, now, job.unique, ttl)
            elseif job.attempts >= job.max then
                make_dead(p, id, now, job.unique)
            else
                push_waiting(p, id, job.prio, now, true)
                wake(p .. 'wake')
            end
        end
    end
end
if failed > 0 then count_up(KEYS[1], 'failed', failed, meta[4]) end
return {count, #lapsed == limit and 1 or 0}
