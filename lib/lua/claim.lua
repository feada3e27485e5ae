-- claim: takes up to N due jobs for one worker from its queues, in the order given (strict
-- priority between queues); within a queue, highest priority first, then oldest first.
-- Each claimed job gets a lease (deadline = now + lease) and a token of its own.
-- KEYS[i]    <p_i>meta of each queue (names the slots)
-- ARGV[1] worker id   ARGV[2] token base (unique per call)   ARGV[3] lease ms
-- ARGV[4] max jobs    ARGV[5..] prefix of each queue, in KEYS order
-- Limits (workq-queue limit; meta limit_rate, limit_window, limit_concurrency): a queue takes no
-- more jobs than its limits leave room for. Rate: a sliding log of start times (<p>starts, token
-- -> start ms) holds every start of the last window; a start is allowed while fewer than
-- limit_rate starts have a time in (now - window, now]. So no half-open interval of length
-- window ever holds more than limit_rate starts (on the server's clock). Concurrency: the
-- queue's <p>running, fleet-wide.
-- Returns { wait_hint_ms, tick_hint_ms, holds, job, job, ... } where wait_hint_ms is the time until the
-- earliest scheduled job of an unpaused queue (-1: none), tick_hint_ms the time until the
-- earliest tick of a schedule of any of the queues (0: due; -1: none, or the claim took as many
-- jobs as asked: a worker that stays busy learns its ticks on its firer's own rounds) and each
-- job is { queue index (1-based), id, payload, attempt, max attempts, timeout ms or '', token }.
-- holds has one number per queue: -1 not held back; -2 held by its concurrency limit (until a
-- running job ends: its end wakes waiters); >= 0 held by its rate limit for that many ms (then
-- as many places as the worker still wants, up to the limit, are free).
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
local holds = {}

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
    local meta = redis.call('HMGET', KEYS[qi], 'version', 'paused', 'limit_rate', 'limit_window',
                            'limit_concurrency')
    check_version(KEYS[qi], false, meta[1])
    holds[qi] = -1
    if meta[2] ~= '1' then
        promote_due(p, now, PROMOTE_LIMIT)
        -- How many this queue may start now: its limits' room, at most what the worker wants.
        local wanted_here = max_jobs - #jobs
        local room = wanted_here
        local rate, window = tonumber(meta[3]), tonumber(meta[4])
        local in_window = 0
        if rate and window and rate > 0 and window > 0 then
            redis.call('ZREMRANGEBYSCORE', p .. 'starts', '-inf', now - window)
            in_window = redis.call('ZCARD', p .. 'starts')
            room = math.min(room, math.max(0, rate - in_window))
        else
            rate = nil
        end
        local concurrency = tonumber(meta[5])
        local full = false  -- the concurrency limit leaves no room
        if concurrency and concurrency > 0 then
            local free = math.max(0, concurrency - redis.call('ZCARD', p .. 'running'))
            full = free <= room and free < wanted_here
            room = math.min(room, free)
        end
        local first = #jobs + 1
        local drained = false  -- seen empty: no need to ask again below
        running = {}
        while #jobs < first - 1 + room do
            local top = redis.call('ZREVRANGE', p .. 'priorities', '0', '0')[1]
            if not top then drained = true; break end
            local list = p .. 'waiting:' .. top
            local wanted = first - 1 + room - #jobs
            local ids = redis.call('LPOP', list, tostring(wanted)) or {}  -- Redis >= 6.2
            if #ids < wanted or redis.call('LLEN', list) == 0 then
                redis.call('ZREM', p .. 'priorities', top)
            end
            for _, id in ipairs(ids) do claim_one(qi, p, id) end
        end
        if #running > 0 then call_chunked('ZADD', p .. 'running', running) end
        local taken = #jobs - first + 1
        if rate and taken > 0 then
            local start_log = {}
            for i = first, #jobs do
                start_log[#start_log + 1] = now_text
                start_log[#start_log + 1] = jobs[i][7]
            end
            call_chunked('ZADD', p .. 'starts', start_log)
            redis.call('PEXPIRE', p .. 'starts', tostring(window))
        end
        local more = not drained and redis.call('ZCARD', p .. 'priorities') > 0
        if more and taken < wanted_here then
            -- Held back by a limit while jobs wait. Pending wake-ups are stale: the next start
            -- is possible when the hint says (rate) or when a running job ends (its end wakes).
            redis.call('DEL', p .. 'wake')
            local count = in_window + taken
            if rate and count >= rate then
                -- When as many places as the worker still wants (at most the limit) are free.
                local k = math.min(wanted_here - taken, rate)
                local index = math.max(0, math.min(count - rate + k - 1, count - 1))
                local at = redis.call('ZRANGE', p .. 'starts', index, index, 'WITHSCORES')[2]
                holds[qi] = math.max(1, (tonumber(at) or now) + window - now)
            elseif full then
                holds[qi] = -2
            end
        elseif more then
            -- More jobs wait than this worker takes: wake another idle worker.
            wake(p .. 'wake')
        else
            -- Nothing waits: pending wake-ups are stale. Any later enqueue pushes a new one.
            redis.call('DEL', p .. 'wake')
        end
        local first_due = redis.call('ZRANGE', p .. 'scheduled', '0', '0', 'WITHSCORES')
        if first_due[2] then
            local wait = math.max(0, tonumber(first_due[2]) - now)
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

local out = {next_due, next_tick, holds}
for _, job in ipairs(jobs) do out[#out + 1] = job end
return out
