-- job_rows: the fields `workq-queue ls` shows for a page of jobs, in one call. Read-only.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] preview bytes   ARGV[3..] ids
-- Returns one array per id: { prio, attempts, max, created, worker, lease, payload length,
-- payload preview, ahead ('1': claimed ahead by workq-work --claim-ahead, no handler yet) }
-- (false for absent fields; an empty array when the record is not a hash).
local p = ARGV[1]
local preview = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
    local key = p .. 'job:' .. ARGV[i]
    if redis.call('TYPE', key).ok ~= 'hash' then
        out[#out + 1] = {}
    else
        local f = redis.call('HMGET', key, 'prio', 'attempts', 'max', 'created', 'worker', 'lease', 'payload',
                             'state', 'ahead')
        local payload = f[7] or ''
        local ahead = (f[8] == 'running' and f[9] == '1') and 1 or 0
        out[#out + 1] = {f[1], f[2], f[3], f[4], f[5], f[6], #payload, string.sub(payload, 1, preview), ahead}
    end
end
return out
