-- dead_requeue: brings dead letters back to waiting with their attempt count reset to 0.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2..] ids
--   (ARGV[2] = '*', ARGV[3] = N, ARGV[4] = S: the N oldest dead letters after the S oldest,
--   which a caller going through every letter has already seen and that stayed dead)
-- Returns { id, status, holder } triples, flattened. Status: 1 requeued; 0 not a dead letter of
-- this queue; 2 kept dead: its record is corrupt (nothing to run: not a hash, no payload, or a
-- count or priority that is not a number); 3 kept dead: its --unique key is held by another
-- live job, `holder` (requeueing it would make two live jobs with one key).
-- A letter kept dead keeps its place and its time of death.
-- Every letter is judged first, then the requeued ones written (see "Damage" in
-- common/helpers.lua): the judgement of each sees those before it as requeued.
local p = ARGV[1]
check_structures(p, {'priorities', 'dead'})
check_version(KEYS[1], false)
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
local requeued = {}     -- id -> { prio, unique key }
local unique_now = {}   -- unique key -> the id this call gives it to
local lists = {}
for _, id in ipairs(ids) do
    local status, holder = 0, ''
    if not requeued[id] and redis.call('ZSCORE', p .. 'dead', id) then
        -- Its state may be anything (requeueing writes a new one); not its numbers.
        local job, problem = read_fields(p, id, {'prio', 'max', 'timeout', 'unique', 'payload'})
        problem = problem or numbers_problem(job)
        if problem or not job.payload then
            status = 2
        else
            local ukey = job.unique and (p .. 'unique:' .. job.unique)
            -- Who holds the key now: a letter requeued before this one in this call, or what
            -- the key names (a key of another type names no job).
            local current = ukey and unique_now[ukey] or nil
            local live = current ~= nil
            if ukey and not current then
                current = here(redis.pcall('GET', ukey))
                if type(current) == 'string' and current ~= id then
                    local state = here(redis.pcall('HGET', p .. 'job:' .. current, 'state'))
                    live = type(state) == 'string' and LIVE[state] == true
                end
            end
            if live then
                status, holder = 3, current
            else
                if not lists[job.prio] then
                    local damage = list_damage(p, job.prio)
                    if damage then refuse(damage) end
                    lists[job.prio] = true
                end
                status = 1
                requeued[id] = {job.prio, ukey}
                if ukey then unique_now[ukey] = id end
            end
        end
    end
    out[#out + 1] = id
    out[#out + 1] = status
    out[#out + 1] = holder
end

-- The first write.
local any = false
for _, id in ipairs(ids) do
    local plan = requeued[id]
    if plan then
        requeued[id] = nil  -- an id named twice is requeued once (the second is status 0 above)
        any = true
        local key = p .. 'job:' .. id
        redis.call('ZREM', p .. 'dead', id)
        redis.call('HDEL', key, 'token', 'settled', 'lease', 'worker', 'finished', 'cancel')
        redis.call('HSET', key, 'attempts', '0')
        -- The key is free, or names a job that has ended: the requeued job holds it.
        if plan[2] then redis.call('SET', plan[2], id) end
        push_waiting(p, id, plan[1], now, false)
    end
end
if any then
    check_version(KEYS[1], true)
    wake(p .. 'wake')
end
return out
