-- job_info: one job's record as the tools show it. Read-only.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] id   ARGV[3] '1' to include the payload and every attempt's error
-- Returns {} when the queue has no such job, else a flat array of field, value pairs:
-- state (a due scheduled job shows as waiting), attempts, max, created, ready, started,
-- finished, lease, worker, prio, timeout, unique, result, error, reason, due, cancel,
-- then payload and errors (a list of JSON objects) when asked for.
local p, id = ARGV[1], ARGV[2]
local key = p .. 'job:' .. id
if redis.call('TYPE', key).ok ~= 'hash' then return {} end
local names = {'state', 'attempts', 'max', 'created', 'ready', 'started', 'finished', 'lease',
               'worker', 'prio', 'timeout', 'unique', 'result', 'error', 'reason', 'cancel',
               'truncated'}
local values = redis.call('HMGET', key, unpack(names))
local out = {}
local now = now_ms()
for i, name in ipairs(names) do
    if values[i] then
        out[#out + 1] = name
        out[#out + 1] = values[i]
    end
end
if values[1] == 'scheduled' then
    local due = redis.call('ZSCORE', p .. 'scheduled', id)
    if due then
        out[#out + 1] = 'due'
        out[#out + 1] = due
        if tonumber(due) <= now then out[2] = 'waiting' end
    end
end
if values[1] == 'dead' then
    out[#out + 1] = 'died'
    out[#out + 1] = redis.call('ZSCORE', p .. 'dead', id) or ''
end
if ARGV[3] == '1' then
    out[#out + 1] = 'payload'
    out[#out + 1] = redis.call('HGET', key, 'payload') or ''
    out[#out + 1] = 'errors'
    out[#out + 1] = redis.call('LRANGE', p .. 'errors:' .. id, 0, -1)
end
out[#out + 1] = 'now'
out[#out + 1] = now
return out
