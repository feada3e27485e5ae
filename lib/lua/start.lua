-- start: a worker hands jobs it claimed ahead (workq-work --claim-ahead) to its handlers: each
-- attempt is counted now, `started` set, the mark `ahead` cleared. Sent without waiting for the
-- reply (through the settler's outbox: sent again after a reconnect), so it changes only a job
-- this token holds, still running and still marked: a job the reaper gave back, or settled
-- since (complete and fail count a marked job's run themselves), is left as it is. A record
-- that cannot be a job is left to the next renewal (which dead-letters it).
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2..]: id, token pairs
-- Returns one status per job: 1 counted; 0 left as it was.
local p = ARGV[1]
check_version(KEYS[1], false)
local now_text = tostring(now_ms())
local out = {}
for i = 2, #ARGV, 2 do
    local id, token = ARGV[i], ARGV[i + 1]
    local verdict, job, problem = holder_check(p, id, token)
    local status = 0
    if verdict == 'held' and not problem and job.state == 'running' and job.ahead == '1' then
        -- The first write frees memory (HDEL is never refused for lack of it): at maxmemory the
        -- notice still goes through, as a settle does, instead of holding the settler back.
        redis.call('HDEL', p .. 'job:' .. id, 'ahead')
        redis.call('HSET', p .. 'job:' .. id, 'attempts', digits(job.attempts + 1), 'started', now_text)
        status = 1
    end
    out[#out + 1] = status
end
return out
