-- dead_requeue: brings dead letters back to waiting with their attempt count reset to 0.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2..] ids
--   (ARGV[2] = '*', ARGV[3] = N, ARGV[4] = S: the N oldest dead letters after the S oldest,
--   which a caller going through every letter has already seen and that stayed dead)
-- Returns { id, status, holder } triples, flattened. Status: 1 requeued; 0 not a dead letter of
-- this queue; 2 kept dead: its record is corrupt (nothing to run); 3 kept dead: its --unique key
-- is held by another live job, `holder` (requeueing it would make two live jobs with one key).
-- A letter kept dead keeps its place and its time of death.
local p = ARGV[1]
check_version(KEYS[1], true)
local now = now_ms()
local ids = {}
if ARGV[2] == '*' then
    local skip = tonumber(ARGV[4]) or 0
    ids = redis.call('ZRANGE', p .. 'dead', skip, skip + tonumber(ARGV[3]) - 1)
else
    for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local LIVE = {waiting = true, scheduled = true, running = true}
local out = {}
local any = false
for _, id in ipairs(ids) do
    local status, holder = 0, ''
    if redis.call('ZSCORE', p .. 'dead', id) then
        local key = p .. 'job:' .. id
        local f = redis.pcall('HMGET', key, 'prio', 'unique', 'payload')
        if f.err then f = {} end  -- not a hash: corrupt
        local ukey = f[2] and (p .. 'unique:' .. f[2])
        if not f[3] then
            status = 2
        else
            local current = ukey and redis.call('GET', ukey)
            local current_state = current and current ~= id and
                redis.pcall('HGET', p .. 'job:' .. current, 'state')
            if type(current_state) == 'string' and LIVE[current_state] then
                status, holder = 3, current
            else
                status = 1
                redis.call('ZREM', p .. 'dead', id)
                redis.call('HDEL', key, 'token', 'settled', 'lease', 'worker', 'finished', 'cancel')
                redis.call('HSET', key, 'attempts', '0')
                -- The key is free, or names a job that has ended: the requeued job holds it.
                if ukey then redis.call('SET', ukey, id) end
                push_waiting(p, id, tonumber(f[1]) or 0, now, false)
                any = true
            end
        end
    end
    out[#out + 1] = id
    out[#out + 1] = status
    out[#out + 1] = holder
end
if any then wake(p .. 'wake') end
return out
