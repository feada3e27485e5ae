-- workq: helpers prepended to every script of lib/lua (see cmake/embed_lua.cmake).
--
-- Keys of one queue share the hash tag {NS:QUEUE}; every script receives that prefix
-- ("{NS:QUEUE}:") and builds the per-job keys from it:
--   <p>meta            hash: version, paused, succeeded, failed, trimmed, dead_max, dead_max_age
--   <p>priorities      zset: the priorities that have waiting jobs (member = score = priority)
--   <p>waiting:<prio>  list: ids waiting at that priority, oldest first
--   <p>scheduled       zset: id -> due time (ms)
--   <p>running         zset: id -> lease deadline (ms)
--   <p>dead            zset: id -> time of death (ms)
--   <p>job:<id>        hash: the job record (see README, "Data model")
--   <p>errors:<id>     list: one JSON object per failed attempt, newest last
--   <p>unique:<key>    string: the id holding a --unique key
--   <p>wake            list: tokens that wake idle workers blocked in BLPOP
--   <p>done:<id>       list: pushed when a job that `workq-enqueue --wait` waits for ends
--   <p>schedules       set: the names of the queue's schedules (workq-schedule)
--   <p>ticks           zset: name -> next tick (ms) of each schedule that is not paused
--   <p>schedule:<name> hash: cron, tz, catch_up, prio, max, timeout, unique, payload, next,
--                      paused, gen (bumped by each definition), last_job, last_tick, created,
--                      updated
--   <p>watchers        zset: worker id -> until when it vouches to fire the queue's ticks
-- and one key per caller-chosen job id in the namespace's slot (see reserve_id below):
--   {NS}:id:<id>       string: the queue that holds, or is making, job <id> (expires)
-- All times are the server's (TIME), in milliseconds.

local DATA_VERSION = 1
local MAX_ERRORS_KEPT = 50        -- attempts' errors kept per job

-- Lua's unpack (and so a command's argument list) holds at most a few thousand values
-- (LUAI_MAXCSTACK, 8,000): a longer list raises an error, after the script's earlier writes,
-- which Redis does not roll back. Every unpack of a list that grows with the input goes
-- through these, UNPACK_CHUNK values at a time (even: pairs never split).
local UNPACK_CHUNK = 1000

-- redis.call(command, key, values...) for `values` of any length, in chunks; returns the sum
-- of the integer replies (ZADD, ZREM, RPUSH...: how many were added or removed).
local function call_chunked(command, key, values)
    local total = 0
    for first = 1, #values, UNPACK_CHUNK do
        local reply = redis.call(command, key, unpack(values, first, math.min(first + UNPACK_CHUNK - 1, #values)))
        if type(reply) == 'number' then total = total + reply end
    end
    return total
end

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Refuses to touch a queue written by a newer data model; records ours on first write.
-- `v` is the meta's `version` when the caller read it already (with other fields, in one HMGET).
local function check_version(meta, write, v)
    if v == nil then v = redis.call('HGET', meta, 'version') end
    if v and tonumber(v) > DATA_VERSION then
        error({err = 'WORKQ_VERSION ' .. v .. ' ' .. DATA_VERSION})
    end
    if not v and write then redis.call('HSET', meta, 'version', DATA_VERSION) end
end

local function wake(wake_key)
    if redis.call('LLEN', wake_key) == 0 then
        redis.call('RPUSH', wake_key, '1')
    end
end

local function push_waiting(p, id, prio, now, at_head)
    local list = p .. 'waiting:' .. prio
    if at_head then redis.call('LPUSH', list, id) else redis.call('RPUSH', list, id) end
    redis.call('ZADD', p .. 'priorities', prio, prio)
    if at_head then
        -- A job put back at the head (release, reap) keeps the time it first became ready: it
        -- is older than those behind it, and the oldest-waiting age reads only list heads.
        -- A fresh record has no `ready`: it has been ready since it was created.
        local key = p .. 'job:' .. id
        local f = redis.call('HMGET', key, 'ready', 'created')
        if f[1] then
            redis.call('HSET', key, 'state', 'waiting')
        else
            redis.call('HSET', key, 'state', 'waiting', 'ready', f[2] or now)
        end
    else
        redis.call('HSET', p .. 'job:' .. id, 'state', 'waiting', 'ready', now)
    end
end

-- Takes `id` out of its waiting list (O(length of that list): only for rare paths).
local function remove_waiting(p, id, prio)
    local list = p .. 'waiting:' .. prio
    redis.call('LREM', list, 1, id)
    if redis.call('LLEN', list) == 0 then redis.call('ZREM', p .. 'priorities', prio) end
end

-- Every stored error text is at most its last MAX_ERROR_BYTES (CONTRACT.md §4: the last 4 KiB
-- of a handler's stderr), starting on a UTF-8 character: a client sending more (a persistent
-- handler's reply, an older workq) cannot fill the server, nor a reader's regex.
local MAX_ERROR_BYTES = 4096
local function cap_error(text)
    if #text <= MAX_ERROR_BYTES then return text end
    return (string.gsub(string.sub(text, -MAX_ERROR_BYTES), '^[\128-\191]+', ''))
end

local function add_error(p, id, now, attempt, reason, text)
    text = cap_error(text)
    local key = p .. 'errors:' .. id
    redis.call('RPUSH', key, cjson.encode({at = now, attempt = attempt, reason = reason, error = text}))
    redis.call('LTRIM', key, -MAX_ERRORS_KEPT, -1)
    redis.call('HSET', p .. 'job:' .. id, 'error', text, 'reason', reason)
end

-- Releases the job's --unique key if the job still holds it.
local function release_unique(p, id, unique)
    if unique and unique ~= '' then
        local ukey = p .. 'unique:' .. unique
        if redis.call('GET', ukey) == id then redis.call('DEL', ukey) end
    end
end

-- Applies the dead-letter cap (count and/or age, kept in meta); counts what it trims.
-- `cap` is { dead_max, dead_max_age } when the caller read them already.
local function trim_dead(p, now, cap)
    cap = cap or redis.call('HMGET', p .. 'meta', 'dead_max', 'dead_max_age')
    local trimmed = {}
    local max_count = tonumber(cap[1])
    if max_count and max_count > 0 then
        local excess = redis.call('ZCARD', p .. 'dead') - max_count
        if excess > 0 then
            for _, id in ipairs(redis.call('ZRANGE', p .. 'dead', 0, excess - 1)) do trimmed[#trimmed + 1] = id end
        end
    end
    local max_age = tonumber(cap[2])
    if max_age and max_age > 0 then
        for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'dead', '-inf', now - max_age, 'LIMIT', 0, 1000)) do
            trimmed[#trimmed + 1] = id
        end
    end
    local count = 0
    for _, id in ipairs(trimmed) do
        if redis.call('ZREM', p .. 'dead', id) == 1 then
            redis.call('DEL', p .. 'job:' .. id, p .. 'errors:' .. id, p .. 'corrupt:' .. id)
            count = count + 1
        end
    end
    if count > 0 then redis.call('HINCRBY', p .. 'meta', 'trimmed', count) end
end

-- Tells a `workq-enqueue --wait` blocked on <p>done:<id> that the job has ended: pushes the final
-- state ('succeeded', 'dead', 'cancelled'), so that the waiter knows it even when the record is
-- gone, and after it the result when the record will not keep it (`result`: --result-ttl 0).
local DONE_TTL_MS = 86400000
-- `notify` is the record's field when the caller read it already (false: absent).
local function notify_final(p, id, notify, state, result)
    if notify == nil then notify = redis.call('HGET', p .. 'job:' .. id, 'notify') end
    if notify == '1' then
        if result then
            redis.call('RPUSH', p .. 'done:' .. id, state, result)
        else
            redis.call('RPUSH', p .. 'done:' .. id, state)
        end
        redis.call('PEXPIRE', p .. 'done:' .. id, DONE_TTL_MS)
    end
end

local function make_dead(p, id, now, unique)
    redis.call('HSET', p .. 'job:' .. id, 'state', 'dead', 'finished', now)
    redis.call('ZADD', p .. 'dead', now, id)
    release_unique(p, id, unique)
    notify_final(p, id, nil, 'dead')
    trim_dead(p, now)
end

-- Final states other than dead expire with the result TTL (ms; 0 or less: at once).
-- `no_errors` true: the caller knows the job never failed (no error record to expire).
local function expire_final(p, id, ttl, no_errors)
    if ttl <= 0 then
        redis.call('DEL', p .. 'job:' .. id, p .. 'errors:' .. id)
    else
        local ttl_text = tostring(ttl)
        redis.call('PEXPIRE', p .. 'job:' .. id, ttl_text)
        if not no_errors then redis.call('PEXPIRE', p .. 'errors:' .. id, ttl_text) end
    end
end

local function make_cancelled(p, id, now, unique, ttl)
    redis.call('HSET', p .. 'job:' .. id, 'state', 'cancelled', 'finished', now)
    redis.call('HDEL', p .. 'job:' .. id, 'cancel', 'lease')
    release_unique(p, id, unique)
    notify_final(p, id, nil, 'cancelled')
    expire_final(p, id, ttl)
end

-- The job that holds --unique key `unique` while it is scheduled, waiting or running; nil when
-- none does (a key naming an ended job is free).
local function live_unique_holder(p, unique)
    local holder = redis.call('GET', p .. 'unique:' .. unique)
    if not holder then return nil end
    local state = redis.call('HGET', p .. 'job:' .. holder, 'state')
    if state == 'waiting' or state == 'scheduled' or state == 'running' then return holder end
    return nil
end

-- Writes the record of new job `id` (no record may exist) in one HSET: `o` holds payload, max
-- (text), created (text), prio (number), prio_text, timeout ('' = the worker's), notify (bool),
-- unique ('' = none) and due (ms, or nil). Takes the unique key; a job with `due` joins the
-- scheduled set. Returns true when the job is waiting: the caller appends it to its priority's
-- list (workq-enqueue batches those in one RPUSH). A fresh record has neither `attempts`
-- (absent = 0) nor `ready` (absent = `created`).
local function write_new_job(p, id, o)
    local fields = {'payload', o.payload, 'max', o.max, 'created', o.created}
    if o.prio ~= 0 then fields[#fields + 1] = 'prio'; fields[#fields + 1] = o.prio_text end
    if o.timeout ~= '' then fields[#fields + 1] = 'timeout'; fields[#fields + 1] = o.timeout end
    if o.notify then fields[#fields + 1] = 'notify'; fields[#fields + 1] = '1' end
    if o.unique ~= '' then
        fields[#fields + 1] = 'unique'; fields[#fields + 1] = o.unique
        redis.call('SET', p .. 'unique:' .. o.unique, id)
    end
    if o.due then
        fields[#fields + 1] = 'state'; fields[#fields + 1] = 'scheduled'
        redis.call('ZADD', p .. 'scheduled', o.due, id)
    else
        fields[#fields + 1] = 'state'; fields[#fields + 1] = 'waiting'
    end
    redis.call('HSET', p .. 'job:' .. id, unpack(fields))
    return not o.due
end

-- Does `token` hold job `id`? The holder is the last claimer, while it runs the job, or
-- after its lease lapsed if nobody claimed the job since (the reaper keeps the token on
-- the record until the next claim, release or requeue). Returns the record's fields, and
-- 'duplicate' when this token already settled the job (a retried settle); 'lost' when the
-- record is missing or not a hash.
local JOB_FIELDS = {'state', 'token', 'settled', 'attempts', 'max', 'prio', 'unique', 'cancel', 'worker',
                    'notify', 'reason'}
local function holder_check(p, id, token)
    local f = redis.pcall('HMGET', p .. 'job:' .. id, unpack(JOB_FIELDS))
    if f.err then return 'lost', {} end  -- not a hash: a corrupt record holds nobody
    local job = {state = f[1], token = f[2], settled = f[3], attempts = tonumber(f[4]) or 0,
                 max = tonumber(f[5]) or 1, prio = tonumber(f[6]) or 0, unique = f[7],
                 cancel = f[8], worker = f[9], notify = f[10], reason = f[11]}
    if not job.state then return 'lost', job end
    if job.settled == token then return 'duplicate', job end
    if job.token ~= token then return 'lost', job end
    if job.state == 'running' or job.state == 'waiting' or job.state == 'dead' then return 'held', job end
    return 'lost', job
end

-- Takes a held job out of the structure its state puts it in (before a settle).
local function detach_held(p, id, job)
    if job.state == 'running' then
        redis.call('ZREM', p .. 'running', id)
    elseif job.state == 'waiting' then
        remove_waiting(p, id, job.prio)
    elseif job.state == 'dead' then
        redis.call('ZREM', p .. 'dead', id)
    end
end

-- The states a job record may be in (README, "Data model"). A record in any other is corrupt.
local STATES = {waiting = true, scheduled = true, running = true, succeeded = true, dead = true,
                cancelled = true}

-- A record that cannot be a job (missing, not a hash, a state or a field workq never writes)
-- becomes a dead letter with a reason instead of blocking the queue, or vanishing from it. A
-- foreign value is kept aside under <p>corrupt:<id>; a hash keeps its fields (what was wrong
-- with them is in the reason), only its state becomes dead.
local function dead_corrupt(p, id, now, why)
    local key = p .. 'job:' .. id
    local kind = redis.call('TYPE', key).ok
    if kind ~= 'none' and kind ~= 'hash' then
        redis.call('RENAME', key, p .. 'corrupt:' .. id)
        why = why .. ' (the ' .. kind .. ' found there is kept as ' .. p .. 'corrupt:' .. id .. ')'
        kind = 'none'
    end
    if kind == 'none' then
        redis.call('HSET', key, 'state', 'dead', 'attempts', 0, 'max', 0, 'created', now)
    end
    add_error(p, id, now, 0, 'corrupt', why)
    make_dead(p, id, now, nil)
end

-- Why a record in `state` cannot be handled as a job in it: nil when the state is one workq
-- knows (a stale entry of a job that moved on is skipped by its reader, not dead-lettered).
local function state_problem(state)
    if STATES[state] then return nil end
    return "the job record's state '" .. tostring(state) .. "' is not one workq knows"
end

-- Moves due scheduled jobs to the tail of their waiting list; at most `limit` per call. A due
-- job whose record is missing or not a hash cannot run: it becomes a dead letter with a reason.
local function promote_due(p, now, limit)
    local due = redis.call('ZRANGEBYSCORE', p .. 'scheduled', '-inf', tostring(now), 'LIMIT', '0', tostring(limit))
    for _, id in ipairs(due) do
        redis.call('ZREM', p .. 'scheduled', id)
        if redis.call('TYPE', p .. 'job:' .. id).ok == 'hash' then
            local f = redis.call('HMGET', p .. 'job:' .. id, 'state', 'prio')
            local problem = state_problem(f[1])
            if problem then
                dead_corrupt(p, id, now, problem .. ' (found when the job became due)')
            else
                push_waiting(p, id, tonumber(f[2]) or 0, now, false)
            end
        else
            dead_corrupt(p, id, now, 'the job record was missing or not a hash when the job became due')
        end
    end
    return #due
end

-- Namespace-wide job ids (workq-enqueue --id, workq-dlq import; schedules' tick ids).
-- A caller-chosen id is reserved first, in {NS}:id:<id> (a string naming the queue, expiring
-- after ID_RESERVATION_MS), by a script of its own (reserve_id.lua): on a Redis Cluster the
-- namespace's slot and the queue's are on different nodes, so no one script can check every
-- queue. The job is made second, by an enqueue fenced by the reservation's deadline: past
-- deadline - ID_CLOCK_MARGIN_MS (the queue node's clock) it makes nothing. So while a
-- reservation lives, only its queue can make the job; once it has lapsed, a job made under it
-- exists already and the next reserver finds it by looking in every queue (its second step).
-- A re-run after a crash between the two steps reserves again (the same queue renews it) and
-- completes the half-done enqueue. The margin covers clock skew between cluster nodes.
local ID_RESERVATION_MS = 15000
local ID_CLOCK_MARGIN_MS = 2000

-- Reserves {NS}:id:<id> (`key`) for `queue`. Returns true, deadline (ms) when `queue` holds it
-- now (made or renewed); false, holder, ms left when another queue holds it. Anything but a
-- string with a time to live there is not a reservation workq wrote: it is replaced.
local function reserve_id(key, queue, now)
    local kind = redis.call('TYPE', key).ok
    if kind == 'string' then
        local holder = redis.call('GET', key)
        local left = redis.call('PTTL', key)
        if holder ~= queue and left > 0 then return false, holder, left end
    elseif kind ~= 'none' then
        redis.call('DEL', key)
    end
    redis.call('SET', key, queue, 'PX', ID_RESERVATION_MS)
    return true, now + ID_RESERVATION_MS
end

-- May a job whose id was reserved until `deadline` (server ms) be made at `now`?
local function id_fence_open(deadline, now)
    return now <= deadline - ID_CLOCK_MARGIN_MS
end
