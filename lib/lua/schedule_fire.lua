-- schedule_fire: one step of a schedule, atomically: the job of a tick (or none, for ticks
-- skipped by --catch-up none) and the schedule's next tick. The caller computed both from the
-- expression; this script checks that the schedule is still the one it read (same generation,
-- same next tick, not paused) and that the tick is due by the server's clock. So when several
-- workers reach the same tick, the first one's step advances the schedule and every other
-- one's is refused: one job per tick. The job's id is NAME.<tick in epoch seconds>; if a job
-- with that id exists already (in any state), none is made.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] name   ARGV[3] generation read   ARGV[4] next tick ms read
-- ARGV[5] the tick to make a job for, ms ('' = none: only advance)   ARGV[6] the new next tick ms
-- ARGV[7] the job id   ARGV[8] the deadline (server ms) of the id's namespace reservation
-- (reserve_id.lua, as for workq-enqueue --id: see reserve_id in common/helpers.lua); past it,
-- nothing is done
-- Returns { status, job id, how, earliest tick ms of the queue (-1: none) } where status is
-- 1 done, 0 refused (changed meanwhile), -1 no such schedule, -2 the tick is not due yet, -3
-- the id's reservation lapsed before this call ran (the caller reserves again); how
-- is 'created', 'exists' (a job with the id existed), 'unique' (the job id is then the live
-- job holding the --unique key) or '' (no job asked for).
local p, name = ARGV[1], ARGV[2]
local tick = ARGV[5] ~= '' and tonumber(ARGV[5]) or nil
local new_next = tonumber(ARGV[6])
local id = ARGV[7]
local fence = tonumber(ARGV[8])
if not new_next or (ARGV[5] ~= '' and (not tick or not fence)) then
    return redis.error_reply('ERR schedule_fire: malformed arguments')
end
local key = p .. 'schedule:' .. name

local function earliest()
    local first = redis.call('ZRANGE', p .. 'ticks', 0, 0, 'WITHSCORES')
    return tonumber(first[2]) or -1
end

-- Everything is read and checked before the first write (see "Damage" in common/helpers.lua):
-- the meta, the ticks, the schedule record and, for a job, its waiting list.
check_structures(p, {'ticks'})
check_version(KEYS[1], false)
-- A record that is not a hash is no schedule (workq-schedule add replaces it).
if kind_of(key) ~= 'hash' then return {-1, '', '', earliest()} end
local f = redis.call('HMGET', key, 'gen', 'next', 'paused', 'payload', 'prio', 'max', 'timeout',
                     'unique')
if f[1] ~= ARGV[3] or tonumber(f[2]) ~= tonumber(ARGV[4]) or f[3] == '1' then
    return {0, '', '', earliest()}
end
local now = now_ms()
if tick and tick > now then return {-2, '', '', earliest()} end
if tick and not id_fence_open(fence, now) then return {-3, '', '', earliest()} end

local prio
if tick then
    -- The job's numbers as workq writes them (workq-schedule add checks them): a schedule
    -- holding others is refused, unchanged, naming them; its tick stays due (workq-status
    -- shows it late) until it is defined again.
    local job = {prio = f[5] or false, max = f[6] or false, timeout = f[7] or false}
    local problem = numbers_problem(job)
    if problem then
        -- "the job record's prio 'x' is not a whole number ..." -> "<key> has a prio 'x' that
        -- is not a whole number ..." (QueueDamagedError takes the key up to the first space).
        refuse(key .. ' has a ' .. string.gsub(problem, "^the job record's (%S+) (.-) is not", '%1 %2 that is not'))
    end
    prio = job.prio + 0  -- '-0' is priority 0 (its list is waiting:0)
    check_structures(p, {'priorities'})
    local damage = list_damage(p, digits(prio))
    if damage then refuse(damage) end
end
check_version(KEYS[1], true)

local how = ''
if tick then
    local unique = f[8] or ''
    local holder = unique ~= '' and live_unique_holder(p, unique) or nil
    if redis.call('EXISTS', p .. 'job:' .. id) == 1 then
        how = 'exists'
    elseif holder then
        how, id = 'unique', holder
    else
        local now_text = tostring(now)
        local prio_text = digits(prio)
        write_new_job(p, id, {payload = f[4] or '', max = f[6] or '10', created = now_text,
                              prio = prio, prio_text = prio_text, timeout = f[7] or '',
                              notify = false, unique = unique, due = nil})
        push_waiting(p, id, prio_text, now_text, false)
        wake(p .. 'wake')
        how = 'created'
    end
    redis.call('HSET', key, 'last_job', id, 'last_tick', tostring(tick))
end
redis.call('HSET', key, 'next', tostring(new_next))
redis.call('ZADD', p .. 'ticks', new_next, name)
return {1, tick and id or '', how, earliest()}
