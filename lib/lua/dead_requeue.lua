-- dead_requeue: brings dead letters back to waiting with their attempt count reset to 0.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2..] ids   (ARGV[2] = '*' and ARGV[3] = N: the N oldest dead letters)
-- Returns { id, 1 requeued | 0 not a dead letter of this queue } pairs, flattened.
local p = ARGV[1]
check_version(KEYS[1], true)
local now = now_ms()
local ids = {}
if ARGV[2] == '*' then
    ids = redis.call('ZRANGE', p .. 'dead', 0, tonumber(ARGV[3]) - 1)
else
    for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local out = {}
local any = false
for _, id in ipairs(ids) do
    local ok = 0
    if redis.call('ZREM', p .. 'dead', id) == 1 then
        local key = p .. 'job:' .. id
        local f = redis.call('HMGET', key, 'prio', 'unique', 'payload')
        if f[3] then
            redis.call('HDEL', key, 'token', 'settled', 'lease', 'worker', 'finished', 'cancel')
            redis.call('HSET', key, 'attempts', 0)
            if f[2] and redis.call('EXISTS', p .. 'unique:' .. f[2]) == 0 then
                redis.call('SET', p .. 'unique:' .. f[2], id)
            end
            push_waiting(p, id, tonumber(f[1]) or 0, now, false)
            ok = 1
            any = true
        else
            -- a corrupt record has nothing to run: keep it dead
            redis.call('ZADD', p .. 'dead', now, id)
        end
    end
    out[#out + 1] = id
    out[#out + 1] = ok
end
if any then wake(p .. 'wake') end
return out
