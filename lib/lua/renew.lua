-- renew: extends the leases of jobs a worker holds in one queue.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] lease ms   ARGV[3..]: id, token pairs
-- Returns one status per job: 1 renewed; 2 renewed, but a user asked to cancel the job (the
-- worker stops its handler); 0 lost: another worker holds it, or it is settled or gone; 3 its
-- record cannot be a job: dead-lettered with the reason `corrupt` (the worker stops its handler).
-- A holder whose lease lapsed keeps the job if nobody claimed it since (the reaper put it
-- back to waiting): renewing takes it back to running.
local p = ARGV[1]
local lease_ms = tonumber(ARGV[2])
check_structures(p, {'priorities', 'running', 'dead'})
check_version(KEYS[1], false)
local now = now_ms()
local out = {}
for i = 3, #ARGV, 2 do
    local id, token = ARGV[i], ARGV[i + 1]
    local verdict, job, problem = holder_check(p, id, token)
    local status = 0
    if verdict == 'corrupt' then
        if dead_corrupt(p, id, now, problem .. ' (found when its holder renewed the lease)', true) then
            status = 3
        end
    elseif verdict == 'held' and job.state ~= 'dead' then
        if job.state == 'waiting' then remove_waiting(p, id, job.prio) end
        local deadline = now + lease_ms
        redis.call('HSET', p .. 'job:' .. id, 'state', 'running', 'lease', deadline)
        redis.call('ZADD', p .. 'running', deadline, id)
        status = (job.cancel == '1') and 2 or 1
    end
    out[#out + 1] = status
end
return out
