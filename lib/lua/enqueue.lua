-- enqueue: creates jobs, waiting or scheduled.
-- KEYS[1] <p>meta (names the slot)
-- ARGV[1] prefix "{NS:QUEUE}:"
-- ARGV[2] priority   ARGV[3] max attempts   ARGV[4] timeout ms ('' = the worker's)
-- ARGV[5] delay ms (0 = none)   ARGV[6] due time ms ('' = none; wins over the delay)
-- ARGV[7] unique key ('' = none)   ARGV[8] 'caller' when ids are the caller's, else 'generated'
-- ARGV[9] '1' when the caller will wait for the jobs to end (workq-enqueue --wait)
-- ARGV[10] the deadline (server ms) of the caller ids' namespace reservation ('' = none): see
--          reserve_id in common/helpers.lua; past it this call makes no job
-- ARGV[11], ARGV[12], ...: id, payload pairs
-- Returns { number of jobs, then for each job NOT created: its index (1-based), status, id }:
--   a created job needs no answer (the caller knows its id), so the usual reply is one number.
--   status 0: not created, the id is the existing job's (a caller's id that exists in any
--   state, or the job that holds the unique key); -1: a generated id collided (the caller
--   retries with another id); -2: the id's reservation lapsed before this call ran (the
--   caller reserves again; nothing was made).
local p = ARGV[1]
local now = now_ms()
local prio = tonumber(ARGV[2])
local max_attempts = ARGV[3]
local timeout = ARGV[4]
local due = nil
if ARGV[6] ~= '' then
    due = tonumber(ARGV[6])
elseif tonumber(ARGV[5]) > 0 then
    due = now + tonumber(ARGV[5])
end
if due and due <= now then due = nil end
local unique = ARGV[7]
local caller_ids = ARGV[8] == 'caller'
local notify = ARGV[9] == '1'
local fence_closed = ARGV[10] ~= '' and not id_fence_open(tonumber(ARGV[10]), now)

-- Where the jobs go, checked before the first write (see "Damage" in common/helpers.lua).
if due then
    check_structures(p, {'scheduled'})
else
    check_structures(p, {'priorities'})
    local damage = list_damage(p, tostring(prio))
    if damage then refuse(damage) end
end
check_version(KEYS[1], true)

-- Numbers go to redis.call as strings formatted once: Redis formats each Lua number with
-- %.17g, a quarter of this script's cost when done per field and per job.
local now_text = tostring(now)
local prio_text = tostring(prio)
local out = {0}
local plain = prio == 0 and timeout == '' and not notify and unique == '' and not due
local made_any = false
local waiting_ids = {}
-- One EXISTS for the whole call: almost always none of the ids exists yet, and then no job needs
-- a lookup of its own (a redis.call costs as much as the HSET that creates the record).
local keys = {}
for i = 11, #ARGV, 2 do keys[#keys + 1] = p .. 'job:' .. ARGV[i] end
local any_exists = false
local made = {}  -- ids created by this call: the same id twice in one call is a collision too
for first = 1, #keys, UNPACK_CHUNK do
    if redis.call('EXISTS', unpack(keys, first, math.min(first + UNPACK_CHUNK - 1, #keys))) > 0 then
        any_exists = true
        break
    end
end
for i = 11, #ARGV, 2 do
    local id, payload = ARGV[i], ARGV[i + 1]
    local key = keys[(i - 9) / 2]
    local status, result_id = 1, id
    if made[id] or (any_exists and redis.call('EXISTS', key) == 1) then
        status = caller_ids and 0 or -1
    elseif fence_closed then
        status = -2
    elseif unique ~= '' then
        -- A key (or a holder's record) of another type names no live job: it is replaced.
        local holder = live_unique_holder(p, unique)
        if holder then status, result_id = 0, holder end
    end
    if status == 1 then
        -- One HSET with every field of the new record. A fresh record has neither `attempts`
        -- (absent = 0) nor `ready` (absent = `created`): 32 bytes and two fields less per job.
        if plain then
            -- The common case in one call with a literal argument list (no table to grow).
            redis.call('HSET', key, 'payload', payload, 'max', max_attempts, 'created', now_text,
                       'state', 'waiting')
            waiting_ids[#waiting_ids + 1] = id
        elseif write_new_job(p, id, {payload = payload, max = max_attempts, created = now_text,
                                     prio = prio, prio_text = prio_text, timeout = timeout,
                                     notify = notify, unique = unique, due = due}) then
            waiting_ids[#waiting_ids + 1] = id
        end
        if caller_ids then made[id] = true end
        made_any = true
    end
    if status ~= 1 then
        out[#out + 1] = (i - 9) / 2
        out[#out + 1] = status
        out[#out + 1] = result_id
    end
end
-- The waiting ids join their list in one RPUSH (in input order), their priority in one ZADD.
if #waiting_ids > 0 then
    local list = p .. 'waiting:' .. prio_text
    call_chunked('RPUSH', list, waiting_ids)
    redis.call('ZADD', p .. 'priorities', prio_text, prio_text)
end
-- One token is enough: a worker that claims while more jobs wait passes the wake-up on.
-- Scheduled jobs wake waiters too, so that they shorten their wait to the new due time.
if made_any then wake(p .. 'wake') end
out[1] = #keys
return out
