-- schedule_rows: reads the schedules of this queue (workq-schedule ls, next; workq-status).
-- Not a transition: it changes nothing.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] a schedule's name, or '' for every schedule of the queue
-- Returns { server time ms, row, row, ... } sorted by name, each row
-- { name, cron, tz, catch_up, next ms, paused '1'/'', last job id, its state ('' when it has
--   none, 'unknown' when its record is gone), priority, max attempts, timeout ms, unique key,
--   payload length in bytes, generation }.
local p = ARGV[1]
check_structures(p, {'schedules'})
local now = now_ms()
local names
if ARGV[2] ~= '' then
    names = {ARGV[2]}
else
    names = redis.call('SMEMBERS', p .. 'schedules')
    table.sort(names)
end
local out = {now}
for _, name in ipairs(names) do
    local key = p .. 'schedule:' .. name
    if redis.call('TYPE', key).ok == 'hash' then
        local f = redis.call('HMGET', key, 'cron', 'tz', 'catch_up', 'next', 'paused', 'last_job',
                             'prio', 'max', 'timeout', 'unique', 'gen')
        local last_state = ''
        if f[6] and f[6] ~= '' then
            local state = here(redis.pcall('HGET', p .. 'job:' .. f[6], 'state'))
            last_state = (type(state) == 'string' and state) or 'unknown'
        end
        out[#out + 1] = {name, f[1] or '', f[2] or 'UTC', f[3] or 'latest', f[4] or '',
                         f[5] or '', f[6] or '', last_state, f[7] or '0', f[8] or '',
                         f[9] or '', f[10] or '', redis.call('HSTRLEN', key, 'payload'),
                         f[11] or '0'}
    end
end
return out
