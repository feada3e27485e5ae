-- claim: takes up to N due jobs for one worker from its queues, in the order given (strict
-- priority between queues); within a queue, highest priority first, then oldest first.
-- Each claimed job gets a lease (deadline = now + lease) and a token of its own.
-- KEYS[i]    <p_i>meta of each queue (names the slots)
-- ARGV[1] worker id   ARGV[2] token base (unique per call)   ARGV[3] lease ms
-- ARGV[4] max jobs    ARGV[5..] prefix of each queue, in KEYS order
-- Returns { wait_hint_ms, tick_hint_ms, job, job, ... } where wait_hint_ms is the time until the
-- earliest scheduled job of an unpaused queue (-1: none), tick_hint_ms the time until the
-- earliest tick of a schedule of any of the queues (0: due; -1: none, or the claim took as many
-- jobs as asked: a worker that stays busy learns its ticks on its firer's own rounds) and each
-- job is { queue index (1-based), id, payload, attempt, max attempts, timeout ms or '', token }.
local worker, token_base = ARGV[1], ARGV[2]
local lease_ms = tonumber(ARGV[3])
local max_jobs = tonumber(ARGV[4])
local PROMOTE_LIMIT = 1000
local now = now_ms()

local jobs = {}
local next_due = -1
local next_tick = -1

-- Numbers go to redis.call as strings formatted once (Redis formats Lua numbers with %.17g).
local now_text = tostring(now)
local deadline = tostring(now + lease_ms)
local running = {}  -- deadline, id pairs for one ZADD per queue

local function claim_one(qi, p, id)
    local key = p .. 'job:' .. id
    local f = redis.pcall('HMGET', key, 'state', 'payload', 'attempts', 'max', 'timeout')
    if f.err or (not f[1] and redis.call('EXISTS', key) == 0) then
        dead_corrupt(p, id, now, 'the job record was missing or not a hash when the job was claimed')
        return
    end
    if f[1] ~= 'waiting' then
        local problem = state_problem(f[1])
        -- A state workq never writes: without a reason it would leave the list and every
        -- listing, a dead letter nobody sees.
        if problem then dead_corrupt(p, id, now, problem .. ' (found when the job was claimed)') end
        return  -- else a stale list entry: the job moved on
    end
    if not f[2] then
        dead_corrupt(p, id, now, 'the job record has no payload')
        return
    end
    local attempt = (tonumber(f[3]) or 0) + 1
    local token = token_base .. '.' .. (#jobs + 1)
    -- `settled` is emptied, not deleted: one write instead of two (no token is empty).
    redis.call('HSET', key, 'state', 'running', 'attempts', tostring(attempt), 'token', token,
               'worker', worker, 'lease', deadline, 'started', now_text, 'settled', '')
    running[#running + 1] = deadline
    running[#running + 1] = id
    jobs[#jobs + 1] = {qi, id, f[2], attempt, tonumber(f[4]) or 1, f[5] or '', token}
end

for qi = 1, #KEYS do
    local p = ARGV[4 + qi]
    local meta = redis.call('HMGET', KEYS[qi], 'version', 'paused')
    check_version(KEYS[qi], false, meta[1])
    if meta[2] ~= '1' then
        promote_due(p, now, PROMOTE_LIMIT)
        local drained = false  -- seen empty: no need to ask again below
        running = {}
        while #jobs < max_jobs do
            local top = redis.call('ZREVRANGE', p .. 'priorities', '0', '0')[1]
            if not top then drained = true; break end
            local list = p .. 'waiting:' .. top
            local wanted = max_jobs - #jobs
            local ids = redis.call('LPOP', list, tostring(wanted)) or {}  -- Redis >= 6.2
            if #ids < wanted or redis.call('LLEN', list) == 0 then
                redis.call('ZREM', p .. 'priorities', top)
            end
            for _, id in ipairs(ids) do claim_one(qi, p, id) end
        end
        if #running > 0 then call_chunked('ZADD', p .. 'running', running) end
        if not drained and redis.call('ZCARD', p .. 'priorities') > 0 then
            -- More jobs wait than this worker takes: wake another idle worker.
            wake(p .. 'wake')
        else
            -- Nothing waits: pending wake-ups are stale. Any later enqueue pushes a new one.
            redis.call('DEL', p .. 'wake')
        end
        local first = redis.call('ZRANGE', p .. 'scheduled', '0', '0', 'WITHSCORES')
        if first[2] then
            local wait = math.max(0, tonumber(first[2]) - now)
            if next_due < 0 or wait < next_due then next_due = wait end
        end
    end
end

-- A worker about to wait learns when its next schedule tick falls (workq-schedule add wakes it).
if #jobs < max_jobs then
    for qi = 1, #KEYS do
        local first = redis.call('ZRANGE', ARGV[4 + qi] .. 'ticks', '0', '0', 'WITHSCORES')
        if first[2] then
            local wait = math.max(0, tonumber(first[2]) - now)
            if next_tick < 0 or wait < next_tick then next_tick = wait end
        end
    end
end

local out = {next_due, next_tick}
for _, job in ipairs(jobs) do out[#out + 1] = job end
return out
