-- heartbeat: a worker's registration and heartbeat, in the namespace's registry. Not a change
-- of any job's state.
-- KEYS[1] {NS}:workers (zset id -> last heartbeat ms)   KEYS[2] {NS}:worker:<id> (hash)
-- ARGV[1] worker id   ARGV[2] lost after ms   ARGV[3] forget after ms
-- ARGV[4] 'stop' to unregister (a clean exit), else 'beat'
-- ARGV[5..] field, value pairs to store (state, busy, processed, ...)
-- Returns { server now ms, ids of lost workers... }: lost = no heartbeat for `lost after`.
-- Entries of workers silent for `forget after` are removed.
local id = ARGV[1]
local lost_after, forget_after = tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[4] == 'stop' then
    redis.call('ZREM', KEYS[1], id)
    redis.call('DEL', KEYS[2])
else
    -- One HSET for every field: an idle worker's heartbeat is a handful of calls, not a dozen.
    -- A worker new to the registry (ZADD added it) records when it started.
    local fields = {'last_heartbeat', now}
    if redis.call('ZADD', KEYS[1], now, id) == 1 then
        fields[#fields + 1] = 'started_at'; fields[#fields + 1] = now
    end
    for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
    call_chunked('HSET', KEYS[2], fields)
    redis.call('PEXPIRE', KEYS[2], forget_after)
end
-- Silent workers, oldest first, in one read: forgotten ones are removed, lost ones returned.
local out = {now}
local silent = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - lost_after, 'WITHSCORES', 'LIMIT', 0, 1100)
local prefix = string.gsub(KEYS[2], '[^:]*$', '')
for i = 1, #silent, 2 do
    local worker, last = silent[i], tonumber(silent[i + 1])
    if last <= now - forget_after then
        redis.call('ZREM', KEYS[1], worker)
        redis.call('DEL', prefix .. worker)
    else
        out[#out + 1] = worker
    end
end
return out
