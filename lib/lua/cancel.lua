-- cancel: a waiting or scheduled job ends cancelled at once; a running one is flagged, and its
-- worker stops the handler at its next renewal and settles it as cancelled (a worker that
-- vanished meanwhile leaves it to the reaper, which also honours the flag).
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] result TTL ms   ARGV[3..] ids
-- Returns one { code, state } per id: 1 cancelled; 2 flagged (running); 3 already finished
-- (state tells which; a record that is not a hash is dead-lettered with a reason and reported
-- as 3, 'dead'); 0 unknown in this queue.
local p = ARGV[1]
local ttl = tonumber(ARGV[2])
check_version(KEYS[1], false)
local now = now_ms()
local out = {}
for i = 3, #ARGV do
    local id = ARGV[i]
    local kind = redis.call('TYPE', p .. 'job:' .. id).ok
    local f = {}
    if kind == 'hash' then f = redis.call('HMGET', p .. 'job:' .. id, 'state', 'prio', 'unique') end
    local state = f[1]
    if kind ~= 'hash' and kind ~= 'none' then
        -- not a job record: it cannot run; a stale list entry left behind is skipped by claim
        redis.call('ZREM', p .. 'scheduled', id)
        dead_corrupt(p, id, now, 'the job record was not a hash when the job was cancelled')
        out[#out + 1] = {3, 'dead'}
    elseif not state then
        out[#out + 1] = {0, 'unknown'}
    elseif state == 'waiting' then
        remove_waiting(p, id, tonumber(f[2]) or 0)
        make_cancelled(p, id, now, f[3], ttl)
        out[#out + 1] = {1, 'cancelled'}
    elseif state == 'scheduled' then
        redis.call('ZREM', p .. 'scheduled', id)
        make_cancelled(p, id, now, f[3], ttl)
        out[#out + 1] = {1, 'cancelled'}
    elseif state == 'running' then
        redis.call('HSET', p .. 'job:' .. id, 'cancel', '1')
        out[#out + 1] = {2, 'running'}
    else
        out[#out + 1] = {3, state}
    end
end
return out
