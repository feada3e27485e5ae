-- job_info: one job's record as the tools show it. Read-only.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] id   ARGV[3] '1' to include the payload and every attempt's error
-- Returns {} when the queue has no such job, else a flat array of field, value pairs:
-- state (a due scheduled job shows as waiting), attempts, max, created, ready, started,
-- finished, lease, worker, prio, timeout, unique, result, error, reason, due, cancel,
-- then payload and errors (a list of JSON objects) when asked for, and `damage` when
-- something of the job cannot be read as workq wrote it (see "Damage" in common/helpers.lua):
-- the record is not a hash (then no other field), a field is not what workq writes, or the
-- error list is not a list (then errors is empty).
local p, id = ARGV[1], ARGV[2]
local key = p .. 'job:' .. id
local now = now_ms()
local kind = kind_of(key)
if kind == 'none' then return {} end
if kind ~= 'hash' then
    return {'damage', key .. ' holds a ' .. kind .. ' where workq keeps a hash', 'now', now}
end
local names = {'state', 'attempts', 'max', 'created', 'ready', 'started', 'finished', 'lease',
               'worker', 'prio', 'timeout', 'unique', 'result', 'error', 'reason', 'cancel',
               'truncated'}
local values = redis.call('HMGET', key, unpack(names))
local out = {}
for i, name in ipairs(names) do
    if values[i] then
        out[#out + 1] = name
        out[#out + 1] = values[i]
    end
end
local damages = {}
local _, problem = read_job(p, id, {'state', 'attempts', 'max', 'prio', 'timeout'})
if problem then damages[#damages + 1] = problem end
if values[1] == 'scheduled' then
    local due = here(redis.pcall('ZSCORE', p .. 'scheduled', id))
    if type(due) == 'string' then
        out[#out + 1] = 'due'
        out[#out + 1] = due
        if tonumber(due) <= now then out[2] = 'waiting' end
    end
end
if values[1] == 'dead' then
    local died = here(redis.pcall('ZSCORE', p .. 'dead', id))
    out[#out + 1] = 'died'
    out[#out + 1] = type(died) == 'string' and died or ''
end
if ARGV[3] == '1' then
    out[#out + 1] = 'payload'
    out[#out + 1] = redis.call('HGET', key, 'payload') or ''
    local errors = here(redis.pcall('LRANGE', p .. 'errors:' .. id, 0, -1))
    if errors.err then
        damages[#damages + 1] = key_damage(p .. 'errors:' .. id, 'list')
        errors = {}
    end
    out[#out + 1] = 'errors'
    out[#out + 1] = errors
end
if #damages > 0 then
    out[#out + 1] = 'damage'
    out[#out + 1] = table.concat(damages, '; ')
end
out[#out + 1] = 'now'
out[#out + 1] = now
return out
