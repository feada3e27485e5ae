-- cancel: a waiting or scheduled job ends cancelled at once; a running one is flagged, and its
-- worker stops the handler at its next renewal and settles it as cancelled (a worker that
-- vanished meanwhile leaves it to the reaper, which also honours the flag).
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] result TTL ms   ARGV[3..] ids
-- Returns one { code, state } per id: 1 cancelled; 2 flagged (running); 3 already finished
-- (state tells which; a record that cannot be a job is dead-lettered with a reason and reported
-- as 3, 'dead'); 0 unknown in this queue.
local p = ARGV[1]
local ttl = tonumber(ARGV[2])
check_structures(p, {'priorities', 'scheduled', 'running', 'dead'})
check_version(KEYS[1], false)
local now = now_ms()
local out = {}
for i = 3, #ARGV do
    local id = ARGV[i]
    local job, problem = read_job(p, id, {'state', 'prio', 'unique'})
    local state = job.state
    if job.missing then
        out[#out + 1] = {0, 'unknown'}
    elseif FINAL[state] then
        out[#out + 1] = {3, state}
    elseif problem then
        -- It cannot run: a dead letter, taken out of wherever it is listed.
        dead_corrupt(p, id, now, problem .. ' (found when the job was cancelled)', true)
        out[#out + 1] = {3, 'dead'}
    elseif state == 'waiting' then
        remove_waiting(p, id, job.prio)
        make_cancelled(p, id, now, job.unique, ttl)
        out[#out + 1] = {1, 'cancelled'}
    elseif state == 'scheduled' then
        redis.call('ZREM', p .. 'scheduled', id)
        make_cancelled(p, id, now, job.unique, ttl)
        out[#out + 1] = {1, 'cancelled'}
    else  -- running
        redis.call('HSET', p .. 'job:' .. id, 'cancel', '1')
        out[#out + 1] = {2, 'running'}
    end
end
return out
