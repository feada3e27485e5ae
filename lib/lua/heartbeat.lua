-- heartbeat: a worker's registration and heartbeat, in the namespace's registry. Not a change
-- of any job's state.
-- KEYS[1] {NS}:workers (zset id -> last heartbeat ms)   KEYS[2] {NS}:worker:<id> (hash)
-- KEYS[3] {NS}:exited (zset id -> when its final registration is forgotten, ms)
-- ARGV[1] worker id   ARGV[2] lost after ms   ARGV[3] forget after ms
-- ARGV[4] 'beat', or 'exit': the worker's last word. Its final registration (state stopped or
--         error, reason, stopped_at) moves from the workers to the exited and is kept ARGV[5] ms,
--         so that `workq-status` can say when and why it ended.
-- ARGV[5] keep ms (exit)   ARGV[6..] field, value pairs to store (state, busy, processed, ...)
-- Returns { server now ms, ids of lost workers... }: lost = no heartbeat for `lost after`.
-- Entries of workers silent for `forget after` are removed, and exited ones past their time.
-- The registry's sets of another type are damage, refused before the first write; a worker's
-- own registration of another type is replaced (see "Damage" in common/helpers.lua). A beat
-- (every few seconds, idle or not) checks the types by its calls instead of TYPE: the workers
-- set by a read, the exited set by its first write (which, failing, writes nothing), the
-- registration by its HSET (replaced when that fails).
local id = ARGV[1]
local lost_after, forget_after = tonumber(ARGV[2]), tonumber(ARGV[3])
local now
local fields
if ARGV[4] == 'exit' then
    local damage = key_damage(KEYS[1], 'zset') or key_damage(KEYS[3], 'zset')
    if damage then refuse(damage) end
    if key_damage(KEYS[2], 'hash') then redis.call('DEL', KEYS[2]) end
    now = now_ms()
    fields = {'last_heartbeat', now}
    local keep = tonumber(ARGV[5])
    fields[#fields + 1] = 'stopped_at'; fields[#fields + 1] = now
    for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
    redis.call('ZREM', KEYS[1], id)
    call_chunked('HSET', KEYS[2], fields)
    redis.call('PEXPIRE', KEYS[2], keep)
    redis.call('ZADD', KEYS[3], now + keep, id)
    -- Exited workers past their time: their hashes expired by themselves.
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
else
    -- One HSET for every field: an idle worker's heartbeat is a handful of calls, not a dozen.
    -- A worker new to the registry records when it started.
    -- A failed call is damage only when its key holds another type; any other error (READONLY,
    -- NOREPLICAS, MISCONF at the first write...) is the server's and goes back as it came.
    local function refuse_or_raise(reply, key, want)
        if type(reply) == 'table' and reply.err then refuse(key_damage(key, want) or error(reply)) end
        return reply
    end
    local known = refuse_or_raise(here(redis.pcall('ZSCORE', KEYS[1], id)), KEYS[1], 'zset')
    now = now_ms()
    -- The first write. Exited workers past their time: their hashes expired by themselves.
    refuse_or_raise(here(redis.pcall('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)), KEYS[3], 'zset')
    redis.call('ZADD', KEYS[1], now, id)
    fields = {'last_heartbeat', now}
    if not known then fields[#fields + 1] = 'started_at'; fields[#fields + 1] = now end
    for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
    if #fields <= 1000 then
        local set = here(redis.pcall('HSET', KEYS[2], unpack(fields)))
        if type(set) == 'table' and set.err then
            if not key_damage(KEYS[2], 'hash') then error(set) end
            redis.call('DEL', KEYS[2])
            call_chunked('HSET', KEYS[2], fields)
        end
    else
        if key_damage(KEYS[2], 'hash') then redis.call('DEL', KEYS[2]) end
        call_chunked('HSET', KEYS[2], fields)
    end
    redis.call('PEXPIRE', KEYS[2], forget_after)
end
-- Silent workers, oldest first, in one read: forgotten ones are removed, lost ones returned.
local out = {now}
local silent = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - lost_after, 'WITHSCORES', 'LIMIT', 0, 1100)
local prefix = string.gsub(KEYS[2], '[^:]*$', '')
for i = 1, #silent, 2 do
    local worker, last = silent[i], tonumber(silent[i + 1])
    if last <= now - forget_after then
        redis.call('ZREM', KEYS[1], worker)
        redis.call('DEL', prefix .. worker)
    else
        out[#out + 1] = worker
    end
end
return out
