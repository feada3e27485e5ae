-- workq: helpers prepended to every script of lib/lua (see cmake/embed_lua.cmake).
--
-- Keys of one queue share the hash tag {NS:QUEUE}; every script receives that prefix
-- ("{NS:QUEUE}:") and builds the per-job keys from it:
--   <p>meta            hash: version, paused, succeeded, failed, trimmed, dead_max, dead_max_age,
--                      limit_rate, limit_window, limit_concurrency
--   <p>priorities      zset: the priorities that have waiting jobs (member = score = priority)
--   <p>waiting:<prio>  list: ids waiting at that priority, oldest first
--   <p>scheduled       zset: id -> due time (ms)
--   <p>running         zset: id -> lease deadline (ms)
--   <p>dead            zset: id -> time of death (ms)
--   <p>job:<id>        hash: the job record (see README, "Data model")
--   <p>errors:<id>     list: one JSON object per failed attempt, newest last
--   <p>corrupt:<id>    any: what job:<id> held when it was not a hash (see dead_corrupt)
--   <p>unique:<key>    string: the id holding a --unique key
--   <p>wake            list: tokens that wake idle workers blocked in BLPOP
--   <p>done:<id>       list: pushed when a job that `workq-enqueue --wait` waits for ends
--   <p>schedules       set: the names of the queue's schedules (workq-schedule)
--   <p>ticks           zset: name -> next tick (ms) of each schedule that is not paused
--   <p>schedule:<name> hash: cron, tz, catch_up, prio, max, timeout, unique, payload, next,
--                      paused, gen (bumped by each definition), last_job, last_tick, created,
--                      updated
--   <p>watchers        zset: worker id -> until when it vouches to fire the queue's ticks
--   <p>starts          zset: token -> start time (ms) of the last window's starts (rate limit)
-- and one key per caller-chosen job id in the namespace's slot (see reserve_id below):
--   {NS}:id:<id>       string: the queue that holds, or is making, job <id> (expires)
-- All times are the server's (TIME), in milliseconds.

-- Damage. Redis does not roll a script back when a call fails half-way: the writes before it
-- stay. So no call that can fail comes after a script's first write. Before it, a script reads
-- and checks what its writes depend on; after it, it writes only to keys whose type it checked
-- or that cannot refuse it (DEL, PEXPIRE, RENAME, HSET on a checked hash), and removes with
-- calls whose failure changes nothing (an id is in no list or set of the wrong type). A key's
-- type is checked by a TYPE, or by a read of it (redis.pcall) that fails when the type is
-- another: the hot paths (claim, complete) check that way, so that a busy or idle worker's calls
-- do not pay a TYPE per structure (each command a script sends costs the server about as much as
-- the work it does). What it finds wrong is handled by kind:
--   - a structure of the queue (meta, priorities, waiting:<prio>, scheduled, running, dead,
--     schedules, ticks, starts, watchers) holding another type is damage: the script refuses with
--     WORKQ_DAMAGED <what> before its first write, and changes nothing (those keys hold the ids
--     of jobs and the queue's pause: nothing is overwritten). A claim skips a queue with a
--     damaged structure that it touches and names it in its reply (it serves the others); the
--     readers (stats, job_info) name it too;
--   - a job record that cannot be a job (missing, not a hash, a state workq never writes, a
--     count or priority that is not a whole number in its range) is quarantined: dead-lettered
--     with the reason `corrupt` and an error saying what was wrong (dead_corrupt);
--   - keys that only signal (wake, done:<id>), a --unique key and a job's error list holding
--     another type hold no job: they are replaced (an error list with a note saying so);
--   - a schedule:<name> that is not a hash, or whose numbers workq did not write, is no
--     schedule: the firer's scripts drop its tick (schedule_due) or make nothing (schedule_fire),
--     `workq-schedule add` replaces it.
-- A meta counter that is not a number starts again (they are statistics); a meta `version`
-- that is not one is damage.

-- Redis Cluster: a slot in migration. While a queue's slot moves to another master (CLUSTER
-- SETSLOT MIGRATING/IMPORTING, then MIGRATE key by key), its keys are split between two nodes.
-- Redis checks every call of a script: on the source, a key that has left (or was never there)
-- fails the call ("non local key"), after the script's earlier writes, which stay; on the
-- target (reached with ASKING), a key not arrived yet reads as absent although the source
-- still holds it. So every script first asks whether its slot is in flux, before anything
-- else (see the end of this file): an EXISTS of two keys that never exist, in the slot of
-- KEYS[1], fails on the source (every key missing: ASK) and on the target (several keys, one
-- missing: TRYAGAIN), and never on a stable slot or a single server. In flux, the script ends
-- at once with a TRYAGAIN error, having read and written nothing: the client waits and sends
-- it again (redis/cluster.hpp), until the slot has one owner again. Keys of other slots are
-- not checked: a script touches one slot (a claim over several queues runs on single servers
-- only). A read that fails that way anyway is never taken for damage (here below): it ends
-- the script with TRYAGAIN too.
local MIGRATION_PROBE_A = ':workq-migration-probe:a'
local MIGRATION_PROBE_B = ':workq-migration-probe:b'

local function migrating(what)
    error({err = 'TRYAGAIN workq: ' .. what .. '; nothing was done'})
end

-- `reply` as redis.pcall gave it, when it is not the error a cluster node gives for a key it
-- does not hold now (a slot in migration, or moved); that error ends the script (TRYAGAIN).
local function here(reply)
    if type(reply) == 'table' and type(reply.err) == 'string' then
        local text = reply.err
        if string.find(text, 'non local key', 1, true) or string.find(text, '^TRYAGAIN') or
           string.find(text, '^ASK ') or string.find(text, '^MOVED ') or
           string.find(text, 'cluster is down', 1, true) then
            migrating('a key of this slot is not on this node (a slot migration)')
        end
    end
    return reply
end

local DATA_VERSION = 1
local MAX_ERRORS_KEPT = 50        -- attempts' errors kept per job
local PRIORITY_LIMIT = 1000000    -- |--priority| at most (CONTRACT.md section 3)

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

-- ZREM of `ids` (any number) from `key`, by pcall: false, having removed nothing, when the
-- key holds another type (the first chunk fails).
local function zrem_all(key, ids)
    for first = 1, #ids, UNPACK_CHUNK do
        local reply = here(redis.pcall('ZREM', key, unpack(ids, first, math.min(first + UNPACK_CHUNK - 1, #ids))))
        if type(reply) == 'table' and reply.err then return false end
    end
    return true
end

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function kind_of(key)
    return redis.call('TYPE', key).ok
end

-- A stored value quoted for a message: at most 40 bytes, control characters as '?'.
local function quote(text)
    text = tostring(text)
    if #text > 40 then text = string.sub(text, 1, 40) .. '...' end
    return "'" .. string.gsub(text, '%c', '?') .. "'"
end

-- A whole number as workq writes it (digits, an optional minus, at most 15 digits), or nil.
-- tonumber alone would take 'nan', 'inf', '0x10' and ' 5 '.
local function whole(text)
    if type(text) ~= 'string' or #text > 16 or not string.find(text, '^%-?%d+$') then return nil end
    return tonumber(text)
end

-- A whole number written back as digits (tostring would write 1e+15 from 10^15 up).
local function digits(n)
    return string.format('%.0f', n)
end

-- The type each structure of a queue holds (absent is fine: empty).
-- starts (the rate limit's log) and watchers (who vouches to fire the ticks) hold no job, but
-- replacing them would break a promise (the rate; a tick counted missed), so they are damage.
local STRUCTURES = {meta = 'hash', priorities = 'zset', scheduled = 'zset', running = 'zset',
                    dead = 'zset', schedules = 'set', ticks = 'zset', starts = 'zset',
                    watchers = 'zset'}

-- nil when `key` is absent or holds `want`; else the damage, said in words.
local function key_damage(key, want)
    local kind = kind_of(key)
    if kind == 'none' or kind == want then return nil end
    return key .. ' holds a ' .. kind .. ' where workq keeps a ' .. want
end

-- The first of the queue's structures `names` (suffixes of STRUCTURES) that is damaged, or nil.
local function structure_damage(p, names)
    for _, name in ipairs(names) do
        local damage = key_damage(p .. name, STRUCTURES[name])
        if damage then return damage end
    end
    return nil
end

local function list_damage(p, prio)
    return key_damage(p .. 'waiting:' .. prio, 'list')
end

-- Ends the script with WORKQ_DAMAGED: only before its first write.
local function refuse(damage)
    error({err = 'WORKQ_DAMAGED ' .. damage})
end

-- The reply of a read of `key` (command, key, args...) by pcall; refuses when the key holds
-- another type than `want` (the read failed, having changed nothing).
local function read_or_refuse(key, want, command, ...)
    local reply = here(redis.pcall(command, key, ...))
    if type(reply) == 'table' and reply.err then refuse(key_damage(key, want) or (key .. ' cannot be read')) end
    return reply
end

-- Refuses unless the queue's meta and the structures `names` hold their types.
local function check_structures(p, names)
    local damage = key_damage(p .. 'meta', 'hash') or structure_damage(p, names or {})
    if damage then refuse(damage) end
end

-- Refuses to touch a queue written by a newer data model; records ours on first write.
-- `v` is the meta's `version` when the caller read it already (with other fields, in one HMGET).
-- The meta must be a hash (check_structures) unless `v` is given.
-- Refuses (WORKQ_VERSION) when `v`, the meta's version, is newer than ours; returns the damage
-- when it is not a number at all, else nil.
local function version_damage(meta, v)
    if not v then return nil end
    local n = whole(v)
    if not n then return meta .. ' has a version ' .. quote(v) .. ' that is not a number' end
    if n > DATA_VERSION then error({err = 'WORKQ_VERSION ' .. v .. ' ' .. DATA_VERSION}) end
    return nil
end

local function check_version(meta, write, v)
    if v == nil then v = redis.call('HGET', meta, 'version') end
    local damage = version_damage(meta, v)
    if damage then refuse(damage) end
    if not v and write then redis.call('HSET', meta, 'version', DATA_VERSION) end
end

-- Reads the queue's meta fields `names` (version first) as one HMGET; refuses when the meta is
-- not a hash or its version is not one this workq knows.
local function read_meta(meta, names)
    local m = here(redis.pcall('HMGET', meta, unpack(names)))
    if m.err then refuse(key_damage(meta, 'hash') or (meta .. ' cannot be read')) end
    check_version(meta, false, m[1])
    return m
end

-- Adds `n` to the meta counter `field` (a statistic: one that is not a number starts again).
-- The meta must be a hash.
local function count_up(meta, field, n, current)
    if current == nil then current = redis.call('HGET', meta, field) end
    redis.call('HSET', meta, field, digits((whole(current) or 0) + n))
end

-- Leaves a wake-up token for idle workers (BLPOP) unless one waits already. A wake key of
-- another type is replaced: it holds no job.
local function wake(wake_key)
    local n = here(redis.pcall('LLEN', wake_key))
    if type(n) ~= 'number' then
        redis.call('DEL', wake_key)
        n = 0
    end
    if n == 0 then redis.call('RPUSH', wake_key, '1') end
end

-- Appends `id` to its waiting list (at the head for a job given back). The list must be
-- absent or a list (list_damage) and priorities a zset; the record a hash.
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

-- Takes `id` out of sorted set `key` if it is there; a key of another type holds no id.
local function zrem(key, id)
    local n = here(redis.pcall('ZREM', key, id))
    return type(n) == 'number' and n or 0
end

-- Takes `id` out of its waiting list (O(length of that list): only for rare paths). A list
-- of another type holds no id: nothing to take out. Priorities must be a zset.
-- Returns how many entries it took out.
local function remove_waiting(p, id, prio)
    local list = p .. 'waiting:' .. prio
    local kind = kind_of(list)
    local removed = 0
    -- The priorities set of another type holds no priority: its ZREM (by pcall) changes nothing,
    -- and a settle that detaches a job (complete, a round) must not fail after its first write.
    if kind == 'list' then
        removed = redis.call('LREM', list, 1, id)
        if redis.call('LLEN', list) == 0 then zrem(p .. 'priorities', prio) end
    elseif kind == 'none' then
        zrem(p .. 'priorities', prio)
    end
    return removed
end

-- Every stored error text is at most its last MAX_ERROR_BYTES (CONTRACT.md §4: the last 4 KiB
-- of a handler's stderr), starting on a UTF-8 character: a client sending more (a persistent
-- handler's reply, an older workq) cannot fill the server, nor a reader's regex.
local MAX_ERROR_BYTES = 4096
local function cap_error(text)
    if #text <= MAX_ERROR_BYTES then return text end
    return (string.gsub(string.sub(text, -MAX_ERROR_BYTES), '^[\128-\191]+', ''))
end

-- Records a failed attempt's error on the job (a hash). An error list of another type is
-- replaced, the new one starting with a note that says so.
local function add_error(p, id, now, attempt, reason, text)
    text = cap_error(text)
    local key = p .. 'errors:' .. id
    local kind = kind_of(key)
    if kind ~= 'none' and kind ~= 'list' then
        redis.call('DEL', key)
        redis.call('RPUSH', key, cjson.encode({at = now, attempt = attempt, reason = 'corrupt',
            error = 'the error list held a ' .. kind .. ', not a list: replaced; earlier errors are lost'}))
    end
    redis.call('RPUSH', key, cjson.encode({at = now, attempt = attempt, reason = reason, error = text}))
    redis.call('LTRIM', key, -MAX_ERRORS_KEPT, -1)
    redis.call('HSET', p .. 'job:' .. id, 'error', text, 'reason', reason)
end

-- Releases the job's --unique key if the job still holds it (a key of another type names no job).
local function release_unique(p, id, unique)
    if unique and unique ~= '' then
        local ukey = p .. 'unique:' .. unique
        if here(redis.pcall('GET', ukey)) == id then redis.call('DEL', ukey) end
    end
end

-- Applies the dead-letter cap (count and/or age, kept in meta); counts what it trims.
-- `cap` is { dead_max, dead_max_age } when the caller read them already. The meta must be a
-- hash and dead a zset.
local function trim_dead(p, now, cap)
    cap = cap or redis.call('HMGET', p .. 'meta', 'dead_max', 'dead_max_age')
    local trimmed = {}
    local max_count = whole(cap[1])
    if max_count and max_count > 0 then
        local excess = redis.call('ZCARD', p .. 'dead') - max_count
        if excess > 0 then
            for _, id in ipairs(redis.call('ZRANGE', p .. 'dead', 0, excess - 1)) do trimmed[#trimmed + 1] = id end
        end
    end
    local max_age = whole(cap[2])
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
    if count > 0 then count_up(p .. 'meta', 'trimmed', count) end
end

-- Tells a `workq-enqueue --wait` blocked on <p>done:<id> that the job has ended: pushes the final
-- state ('succeeded', 'dead', 'cancelled'), so that the waiter knows it even when the record is
-- gone, and after it the result when the record will not keep it (`result`: --result-ttl 0).
local DONE_TTL_MS = 86400000
-- `notify` is the record's field when the caller read it already (false: absent).
local function notify_final(p, id, notify, state, result)
    if notify == nil then notify = redis.call('HGET', p .. 'job:' .. id, 'notify') end
    if notify == '1' then
        local key = p .. 'done:' .. id
        if key_damage(key, 'list') then redis.call('DEL', key) end
        if result then
            redis.call('RPUSH', key, state, result)
        else
            redis.call('RPUSH', key, state)
        end
        redis.call('PEXPIRE', key, DONE_TTL_MS)
    end
end

-- The record must be a hash, dead a zset, the meta a hash.
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
-- none does (a key naming an ended job is free). Writes nothing, fails on nothing: a unique key
-- (or a holder's record) of another type names no live job, and write_new_job replaces it.
local function live_unique_holder(p, unique)
    local holder = here(redis.pcall('GET', p .. 'unique:' .. unique))
    if type(holder) ~= 'string' then return nil end
    local state = here(redis.pcall('HGET', p .. 'job:' .. holder, 'state'))
    if state == 'waiting' or state == 'scheduled' or state == 'running' then return holder end
    return nil
end

-- Writes the record of new job `id` (no record may exist) in one HSET: `o` holds payload, max
-- (text), created (text), prio (number), prio_text, timeout ('' = the worker's), notify (bool),
-- unique ('' = none) and due (ms, or nil). Takes the unique key; a job with `due` joins the
-- scheduled set. Returns true when the job is waiting: the caller appends it to its priority's
-- list (workq-enqueue batches those in one RPUSH). A fresh record has neither `attempts`
-- (absent = 0) nor `ready` (absent = `created`). The caller checked that the record is absent
-- and, with `due`, that scheduled is a zset (SET replaces a unique key of any type).
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

-- The states a job record may be in (README, "Data model"). A record in any other is corrupt.
local STATES = {waiting = true, scheduled = true, running = true, succeeded = true, dead = true,
                cancelled = true}
-- A record that has ended is not quarantined again for a bad field: nothing runs it any more
-- (a stale entry of it is dropped). Its fields are shown as they are.
local FINAL = {succeeded = true, dead = true, cancelled = true}

-- The numeric fields of a record: the range each must be in, and its value when absent.
local NUMBERS = {
    attempts = {0, 999999999999999, 0},
    max = {0, 999999999999999, 1},
    prio = {-PRIORITY_LIMIT, PRIORITY_LIMIT, 0},
    timeout = {0, 999999999999999, false},
}

-- Reads fields `names` of job `id` as a table (absent fields false). Returns it, and why it
-- cannot be a job when it is missing ({missing = true}) or not a hash ({}).
local function read_fields(p, id, names)
    local key = p .. 'job:' .. id
    local f = here(redis.pcall('HMGET', key, unpack(names)))
    if f.err then return {}, 'the job record is a ' .. kind_of(key) .. ', not a hash' end
    local job = {}
    for i, name in ipairs(names) do job[name] = f[i] end
    return job, nil
end

-- Converts the numeric fields read into `job` (attempts, max, prio, timeout: their defaults
-- when absent); returns why one is not a whole number in its range, or nil.
local function numbers_problem(job)
    for name, kind in pairs(NUMBERS) do
        local text = job[name]
        if text == false or (text == '' and name == 'timeout') then
            job[name] = kind[3]
        elseif type(text) == 'string' then
            local n = whole(text)
            if not n or n < kind[1] or n > kind[2] then
                return "the job record's " .. name .. ' ' .. quote(text) ..
                    ' is not a whole number from ' .. kind[1] .. ' to ' .. digits(kind[2])
            end
            job[name] = n
        end
    end
    return nil
end

-- Reads fields `names` of job `id`, and always its state and numbers, so that every script
-- judges a record alike. Returns the record as a table (absent fields false; attempts, max, prio
-- and timeout as numbers, or their defaults), and why it cannot be a job, or nil: missing
-- ({missing = true}), not a hash, a state workq never writes, a number out of its kind. With a
-- reason, numbers may be left as text: use none of them.
-- `names` may be a list job_fields made once (the hot paths: a claim reads one record per job);
-- any other list is merged with the judged fields on each call.
local JUDGED = {'state', 'attempts', 'max', 'prio', 'timeout'}
-- The judged fields and `names`, each once: what read_job reads. Plain loops: in the function
-- library this also runs at load time, where ipairs and the other globals are not defined.
local function job_fields(names)
    local all, seen = {judged = true}, {}
    local lists = {JUDGED, names}
    for l = 1, 2 do
        local list = lists[l]
        for i = 1, #list do
            local name = list[i]
            if not seen[name] then
                seen[name] = true
                all[#all + 1] = name
            end
        end
    end
    return all
end
local function read_job(p, id, names)
    local job, problem = read_fields(p, id, names.judged and names or job_fields(names))
    if problem then return job, problem end
    if not STATES[job.state] then
        if job.state then
            return job, "the job record's state " .. quote(job.state) .. ' is not one workq knows'
        end
        if redis.call('EXISTS', p .. 'job:' .. id) == 0 then
            job.missing = true
            return job, 'the job record is missing'
        end
        return job, 'the job record has no state'
    end
    return job, numbers_problem(job)
end

-- A record that cannot be a job becomes a dead letter with a reason instead of blocking the
-- queue, or vanishing from it. A foreign value is kept aside under <p>corrupt:<id>; a hash
-- keeps its fields (what was wrong with them is in the reason), becomes dead and holds no lease
-- any more (no token: its old holder's settle is refused). `detach`: the caller does not know
-- where the id is listed; it is taken out of running and scheduled, and out of its waiting list
-- (every waiting list when its priority cannot be read: O(jobs waiting), for a rare case).
-- Needs the meta a hash; returns false, having written nothing, when the dead letters (or, to
-- detach, priorities) are damaged.
local function dead_corrupt(p, id, now, why, detach)
    if structure_damage(p, detach and {'dead', 'priorities'} or {'dead'}) then return false end
    local key = p .. 'job:' .. id
    local kind = kind_of(key)
    if detach then
        zrem(p .. 'running', id)
        zrem(p .. 'scheduled', id)
        -- A record in a state workq knows is in a waiting list only when waiting; one in no
        -- known state may be in any.
        local f = kind == 'hash' and redis.call('HMGET', key, 'state', 'prio') or {}
        local prio = f[1] == 'waiting' and whole(f[2] or '0')
        if (f[1] == 'waiting' or not STATES[f[1]]) and
           (not prio or remove_waiting(p, id, prio) == 0) then
            for _, listed in ipairs(redis.call('ZRANGE', p .. 'priorities', 0, -1)) do
                remove_waiting(p, id, listed)
            end
        end
    end
    if kind ~= 'none' and kind ~= 'hash' then
        redis.call('RENAME', key, p .. 'corrupt:' .. id)
        why = why .. ' (the ' .. kind .. ' found there is kept as ' .. p .. 'corrupt:' .. id .. ')'
        kind = 'none'
    end
    if kind == 'none' then
        redis.call('HSET', key, 'state', 'dead', 'attempts', 0, 'max', 0, 'created', now)
    else
        redis.call('HDEL', key, 'token', 'lease')
    end
    add_error(p, id, now, 0, 'corrupt', why)
    make_dead(p, id, now, nil)
    return true
end

-- Does `token` hold job `id`? The holder is the last claimer, while it runs the job, or
-- after its lease lapsed if nobody claimed the job since (the reaper keeps the token on
-- the record until the next claim, release or requeue). Returns the verdict, the record's
-- fields and, for 'corrupt', why: 'duplicate' when this token already settled the job (a
-- retried settle); 'held'; 'lost' when the record is missing or another token holds it;
-- 'corrupt' when the record is not a hash, or its holder's record cannot be a job.
local JOB_FIELDS = job_fields({'state', 'token', 'settled', 'attempts', 'max', 'prio', 'unique', 'cancel',
                               'worker', 'notify', 'reason', 'ahead'})
local function holder_check(p, id, token)
    local job, problem = read_job(p, id, JOB_FIELDS)
    if job.missing then return 'lost', job end
    if not job.state and problem then return 'corrupt', job, problem end  -- not a hash
    if job.settled == token then return 'duplicate', job end
    if job.token ~= token then return 'lost', job end
    if problem then return 'corrupt', job, problem end
    if job.state == 'running' or job.state == 'waiting' or job.state == 'dead' then return 'held', job end
    return 'lost', job
end

-- Takes a held job out of the structure its state puts it in (before a settle).
local function detach_held(p, id, job)
    if job.state == 'running' then
        zrem(p .. 'running', id)
    elseif job.state == 'waiting' then
        remove_waiting(p, id, job.prio)
    elseif job.state == 'dead' then
        zrem(p .. 'dead', id)
    end
end

-- Successes reported by their holders (complete.lua; claim.lua settles those a worker sends with
-- its claim): each job becomes succeeded with its result, kept for `ttl` ms. `at` lists where
-- each job's four arguments begin in `argv` (the script's ARGV, passed in: in the function
-- library of cmake/embed_lua.cmake a helper sees no global ARGV): id, token, result bytes, bytes
-- of the handler's output dropped beyond --max-result ('0': the result is whole). `meta` holds
-- the queue's meta key (`key`) and its fields succeeded, rate_minute, rate_count and
-- limit_concurrency as the caller read them, with the version it checked (the meta is a hash of
-- our data model). Each job is judged and recorded on its own, exactly as if it came alone;
-- returns one status per job, in order: 1 succeeded; 2 already settled by this token (a retried
-- settle: nothing changes); 0 refused: the token no longer holds the job; 3 its record cannot be
-- a job: dead-lettered with the reason `corrupt`, the result kept on it.
-- This is the hot path of every job: each redis.call costs about as much as the work it does,
-- so the meta is written once per call, and each record read once and written once. Its first
-- write frees memory (HDEL is never refused for lack of it), so the settle goes through when
-- the server is at maxmemory: once a script has written, Redis lets it finish.
local function complete_jobs(p, meta, ttl, now, argv, at)
    local now_text = tostring(now)
    local out = {}
    local finished_running = {}  -- ids to take out of <p>running with one ZREM
    local succeeded = 0
    for _, i in ipairs(at) do
        local id, token = argv[i], argv[i + 1]
        local verdict, job, problem = holder_check(p, id, token)
        local status = 0
        if verdict == 'duplicate' then
            status = 2
        elseif verdict == 'corrupt' then
            if dead_corrupt(p, id, now, problem .. ' (found when its holder reported a success; the ' ..
                            'result is kept on the record)', true) then
                redis.call('HSET', p .. 'job:' .. id, 'result', argv[i + 2])
                status = 3
            end
        elseif verdict == 'held' then
            status = 1
            succeeded = succeeded + 1
            -- A running job leaves <p>running below, in one ZREM for the batch.
            if job.state == 'running' then
                finished_running[#finished_running + 1] = id
            else
                detach_held(p, id, job)
            end
            local key = p .. 'job:' .. id
            redis.call('HDEL', key, 'lease', 'cancel')
            local fields = {'state', 'succeeded', 'result', argv[i + 2], 'finished', now_text, 'settled', token}
            local dropped = argv[i + 3]
            if dropped ~= '0' then
                fields[#fields + 1] = 'truncated'; fields[#fields + 1] = dropped
            end
            -- A job claimed ahead (workq-work --claim-ahead) whose start notice has not arrived
            -- (it may come after this settle, or never): its run counts all the same, here. A
            -- start notice that comes later finds the job no longer running and changes nothing.
            if job.ahead == '1' then
                fields[#fields + 1] = 'attempts'; fields[#fields + 1] = digits(job.attempts + 1)
                fields[#fields + 1] = 'ahead'; fields[#fields + 1] = ''
            end
            redis.call('HSET', key, unpack(fields))
            release_unique(p, id, job.unique)
            notify_final(p, id, job.notify, 'succeeded', ttl <= 0 and argv[i + 2] or nil)
            -- A job that never failed has no error record (add_error sets `reason` on the record).
            expire_final(p, id, ttl, not job.reason)
        end
        out[#out + 1] = status
    end
    -- Records of a batch may have been detached from <p>running before: ZREM ignores them.
    -- A running set of another type holds none of them (see "Damage" above).
    -- (A set of another type fails the ZREM, which writes nothing: no TYPE read first.)
    if #finished_running > 0 and zrem_all(p .. 'running', finished_running) then
        -- A place under the queue's concurrency limit is free: wake a worker it held back (claim
        -- emptied the wake-ups while the limit was full). fail, release and reap wake anyway.
        -- (wake replaces a wake key of another type; a limit that is not a number is none.)
        if (whole(meta.limit_concurrency) or 0) > 0 then wake(p .. 'wake') end
    end
    if succeeded > 0 then
        -- The success count, and recent throughput for workq-status (successes in this minute
        -- and the one before), in one write: the script is atomic, so read-and-set is as safe as
        -- HINCRBY. A counter that is not a number starts again (a statistic; see "Damage").
        local minute = math.floor(now / 60000)
        local counts = {'succeeded', digits((whole(meta.succeeded) or 0) + succeeded)}
        if whole(meta.rate_minute) == minute then
            counts[3] = 'rate_count'; counts[4] = digits((whole(meta.rate_count) or 0) + succeeded)
        else
            local previous = (whole(meta.rate_minute) == minute - 1) and (whole(meta.rate_count) or 0) or 0
            counts[3] = 'rate_minute'; counts[4] = digits(minute)
            counts[5] = 'rate_count'; counts[6] = digits(succeeded)
            counts[7] = 'rate_previous'; counts[8] = digits(previous)
        end
        redis.call('HSET', meta.key, unpack(counts))
    end
    return out
end

-- Due scheduled jobs, in two steps so that nothing is written before everything is checked:
-- plan_promote reads up to `limit` due jobs and returns the plan, or nil and the damage (a
-- waiting list of another type: nothing may be written); apply_promote moves each to the tail
-- of its waiting list, or dead-letters it with the reason when its record cannot be a job, or
-- drops a stale entry (a job in another state workq knows). The plan is applied before
-- anything else is read: the records do not change in between (scripts are atomic).
-- Scheduled must be a zset, checked by the caller; priorities too, and dead, for the apply.
-- `due`: the due ids (at most `limit`) when the caller read them already.
local PROMOTE_FIELDS = job_fields({'state', 'prio'})
local function plan_promote(p, now, limit, due)
    due = due or redis.call('ZRANGEBYSCORE', p .. 'scheduled', '-inf', tostring(now), 'LIMIT', '0', tostring(limit))
    local plan = {}
    local lists = {}
    if #due > 0 then
        local damage = structure_damage(p, {'priorities', 'dead'})
        if damage then return nil, damage end
    end
    for _, id in ipairs(due) do
        local job, problem = read_job(p, id, PROMOTE_FIELDS)
        local step = {id = id}
        if problem and not FINAL[job.state] then
            step.corrupt = problem .. ' (found when the job became due)'
            step.detach = job.state ~= 'scheduled'
        elseif job.state == 'scheduled' and not problem then
            step.prio = job.prio
            if not lists[job.prio] then
                local damage = list_damage(p, job.prio)
                if damage then return nil, damage end
                lists[job.prio] = true
            end
        end
        plan[#plan + 1] = step
    end
    return plan
end

local function apply_promote(p, now, plan)
    for _, step in ipairs(plan) do
        redis.call('ZREM', p .. 'scheduled', step.id)
        if step.corrupt then
            dead_corrupt(p, step.id, now, step.corrupt, step.detach)
        elseif step.prio then
            push_waiting(p, step.id, step.prio, now, false)
        end
    end
    return #plan
end

-- The plan, for a script that has written nothing yet: refuses on damage.
local function promote_plan_or_refuse(p, now, limit, due)
    local plan, damage = plan_promote(p, now, limit, due)
    if not plan then refuse(damage) end
    return plan
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

-- Before anything else in every script: is the slot of `keys`[1] in flux (see "Redis Cluster"
-- above)? One EXISTS of two absent keys; a script without keys touches none. Every script calls
-- it first with its KEYS (cmake/embed_lua.cmake puts the call before each body): in a function
-- library this file runs at load time, where redis.call is not allowed.
local function slot_guard(keys)
    if keys[1] then
        local tag = string.match(keys[1], '^{[^}]+}')
        if tag then
            local probe = redis.pcall('EXISTS', tag .. MIGRATION_PROBE_A, tag .. MIGRATION_PROBE_B)
            if type(probe) == 'table' then migrating('the slot of ' .. tag .. ' is migrating between nodes') end
        end
    end
end
