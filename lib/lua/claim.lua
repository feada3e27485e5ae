-- claim: one round of a worker. First it settles the successes the worker sends along (those
-- that finished since its last call: the settle and the next claim cost one round trip, not
-- two), then it takes up to N due jobs for the worker from its queues, in the order given
-- (strict priority between queues); within a queue, highest priority first, then oldest first.
-- Each claimed job gets a lease (deadline = now + lease) and a token of its own.
-- KEYS[i]    <p_i>meta of each queue (names the slots)
-- ARGV[1] worker id   ARGV[2] token base (unique per call)   ARGV[3] lease ms
-- ARGV[4] max jobs    ARGV[5] how many of them are claimed ahead (workq-work --claim-ahead; 0: none)
-- ARGV[6] result TTL ms (for the successes)   ARGV[7] k, the number of successes
-- ARGV[8..7+n] prefix of each queue, in KEYS order (n = #KEYS)
-- then k groups of five: queue index (1-based, into KEYS), id, token, result bytes, bytes of the
-- handler's output dropped beyond --max-result (0: the result is whole)
-- The successes are settled exactly as complete.lua settles them (complete_jobs in
-- common/helpers.lua: each job judged on its own, by its own token; a queue's meta read once
-- and written once; a job claimed ahead whose start notice has not arrived has its run counted).
-- A success of a queue whose meta cannot be read (not a hash, a version that
-- is not a number: the queue is named in `damaged`) is not judged: status 0. A queue written by
-- a newer data model refuses the whole call (WORKQ_VERSION) before any write: nothing settled,
-- nothing claimed. The settle comes first and its first write is an HDEL, which Redis never
-- refuses for lack of memory: at maxmemory the call goes through as complete did alone (and as
-- a claim did alone: its first write is the LPOP of the jobs, which frees memory too).
-- Claim ahead: of the jobs a call takes, the first (max - ahead) start now; any after them are
-- claimed ahead: leased like the others (state running, token, lease, in <p>running) but their
-- attempt is not counted and their record says `ahead` = 1. start.lua counts the attempt when a
-- handler gets the job; complete and fail count it for a job still marked; release and the
-- reaper give it back uncounted.
-- Limits (workq-queue limit; meta limit_rate, limit_window, limit_concurrency): a queue takes no
-- more jobs than its limits leave room for. Rate: a sliding log of start times (<p>starts, token
-- -> start ms) holds every start of the last window; a start is allowed while fewer than
-- limit_rate starts have a time in (now - window, now]. So no half-open interval of length
-- window ever holds more than limit_rate starts (on the server's clock). Concurrency: the
-- queue's <p>running, fleet-wide. A limit that is not a whole number is none (set_limits writes
-- only those).
-- Returns { wait_hint_ms, tick_hint_ms, holds, damaged, settled, job, job, ... } where
-- wait_hint_ms is the time until the earliest scheduled job of an unpaused queue (-1: none),
-- tick_hint_ms the time until the earliest tick of a schedule of any of the queues (0: due; -1:
-- none, or the claim took as many jobs as asked: a worker that stays busy learns its ticks on
-- its firer's own rounds); holds has one number per queue: -1 not held back; -2 held by its
-- concurrency limit (until a running job ends: its end wakes waiters); >= 0 held by its rate
-- limit for that many ms (then as many places as the worker still wants, up to the limit, are
-- free); damaged lists { queue index, what } pairs, flattened, for each queue skipped because a
-- structure of it holds the wrong type (see "Damage" in common/helpers.lua; the other queues are
-- served as usual); settled has one status per success, in order, with complete's codes (1
-- succeeded, 2 already settled by this token, 0 refused, 3 corrupt: dead-lettered, the result
-- kept on it); and each job is
-- { queue index (1-based), id, payload, attempt, max attempts, timeout ms or '', token, ahead (1:
-- claimed ahead, not started) }.
local worker, token_base = ARGV[1], ARGV[2]
local lease_ms = tonumber(ARGV[3])
local max_jobs = tonumber(ARGV[4])
local starting = max_jobs - (tonumber(ARGV[5]) or 0)  -- jobs past this many are claimed ahead
local result_ttl = tonumber(ARGV[6])
local successes = tonumber(ARGV[7]) or 0
local FIRST_SUCCESS = 8 + #KEYS  -- ARGV index of the first success group
local PROMOTE_LIMIT = 1000
local now = now_ms()

-- The fields claim_one reads of each record, merged with the judged ones once per call.
local CLAIM_FIELDS = job_fields({'payload', 'ahead'})
local jobs = {}
local next_due = -1
local next_tick = -1
local damaged = {}

-- Numbers go to redis.call as strings formatted once (Redis formats Lua numbers with %.17g).
local now_text = tostring(now)
local deadline = tostring(now + lease_ms)
local running = {}  -- deadline, id pairs for one ZADD per queue
local holds = {}

-- The first damage found in each queue; the reply lists them in the queues' order.
local damage_of = {}
local function note_damage(qi, damage)
    damage_of[qi] = damage_of[qi] or damage
end

local function claim_one(qi, p, id)
    local job, problem = read_job(p, id, CLAIM_FIELDS)
    -- A stale list entry: the job moved on.
    if job.state ~= 'waiting' and (not problem or FINAL[job.state]) then return end
    if not problem and not job.payload then problem = 'the job record has no payload' end
    if problem then
        -- The queue's dead letters were checked before this queue's first write.
        dead_corrupt(p, id, now, problem .. ' (found when the job was claimed)', job.state ~= 'waiting')
        return
    end
    local attempt = job.attempts + 1
    local token = token_base .. '.' .. (#jobs + 1)
    local ahead = #jobs >= starting
    -- `settled` is emptied, not deleted: one write instead of two (no token is empty). So is a
    -- mark `ahead` left by an earlier claim (a job the reaper gave back before it started).
    -- A job claimed ahead keeps its count: `attempt` is the one it will be when it starts.
    local key = p .. 'job:' .. id
    if ahead then
        redis.call('HSET', key, 'state', 'running', 'token', token, 'worker', worker, 'lease', deadline,
                   'started', now_text, 'settled', '', 'ahead', '1')
    elseif job.ahead and job.ahead ~= '' then
        redis.call('HSET', key, 'state', 'running', 'attempts', digits(attempt), 'token', token,
                   'worker', worker, 'lease', deadline, 'started', now_text, 'settled', '', 'ahead', '')
    else
        redis.call('HSET', key, 'state', 'running', 'attempts', digits(attempt), 'token', token,
                   'worker', worker, 'lease', deadline, 'started', now_text, 'settled', '')
    end
    running[#running + 1] = deadline
    running[#running + 1] = id
    jobs[#jobs + 1] = {qi, id, job.payload, attempt, job.max, job.timeout and digits(job.timeout) or '', token,
                       ahead and 1 or 0}
end

-- The successes, by queue: where each group's id is in ARGV. A malformed call (a caller's bug)
-- is refused here, before any write.
local settle_at = {}
for n = 1, successes do
    local at = FIRST_SUCCESS + 5 * (n - 1)
    local qi = tonumber(ARGV[at])
    if not qi or not KEYS[qi] or ARGV[at + 4] == nil then
        error({err = 'ERR claim: success ' .. n .. ' names no queue of the call, or lacks a field'})
    end
    settle_at[qi] = settle_at[qi] or {}
    table.insert(settle_at[qi], at + 1)
end

-- Every queue's meta is read before the first write: a newer data model ends the call here, a
-- queue whose meta is damaged is left out (and its successes are not judged). The queues'
-- other structures are checked where the claim touches them (below).
local metas = {}
local settle_metas = {}  -- per queue with successes: its meta, or false when it cannot be read
for qi = 1, #KEYS do
    local meta
    if settle_at[qi] then
        meta = here(redis.pcall('HMGET', KEYS[qi], 'version', 'paused', 'limit_rate', 'limit_window',
                                'limit_concurrency', 'succeeded', 'rate_minute', 'rate_count'))
    else
        meta = here(redis.pcall('HMGET', KEYS[qi], 'version', 'paused', 'limit_rate', 'limit_window',
                                'limit_concurrency'))
    end
    local meta_damage
    if meta.err then
        meta_damage = key_damage(KEYS[qi], 'hash') or (KEYS[qi] .. ' cannot be read')
    else
        meta_damage = version_damage(KEYS[qi], meta[1])
    end
    if meta_damage then
        note_damage(qi, meta_damage)
        metas[qi] = false
    else
        metas[qi] = meta
    end
    if settle_at[qi] then
        settle_metas[qi] = not meta_damage and {key = KEYS[qi], succeeded = meta[6], rate_minute = meta[7],
                                                rate_count = meta[8], limit_concurrency = meta[5]}
    end
end

-- Every check that can refuse the call is behind us: the successes are settled first (their
-- queues' first writes), queue by queue, each status put back in the caller's order.
local settled = {}
for qi = 1, #KEYS do
    local at = settle_at[qi]
    if at then
        local statuses = {}
        if settle_metas[qi] then
            statuses = complete_jobs(ARGV[7 + qi], settle_metas[qi], result_ttl, now, ARGV, at)
        end
        for j, i in ipairs(at) do settled[(i - 1 - FIRST_SUCCESS) / 5 + 1] = statuses[j] or 0 end
    end
end

-- The claim, queue by queue. A queue's structures are checked before its first write here, and
-- only those the call touches (an idle worker's claim costs its reads): scheduled and
-- priorities by the reads that come first (a key of another type fails the read, which writes
-- nothing); running and dead (written after the jobs are taken) and a rate limit's starts by
-- their types, only when there is a job to take or to promote. A damaged queue is named in
-- `damaged` and left as it is; the other queues are served.
local skipped = {}  -- queues found damaged here: their ticks are not read
for qi = 1, #KEYS do
    local p = ARGV[7 + qi]
    local meta = metas[qi]
    holds[qi] = -1
    if meta and meta[2] == '1' then
        -- A paused queue's wake key is not touched below: one of another type would fail the
        -- worker's BLPOP on every queue. It holds no job: replaced.
        if key_damage(p .. 'wake', 'list') then redis.call('DEL', p .. 'wake') end
    elseif meta then
        -- The first scheduled job: due now (promoted below), or the time of the next (the hint).
        local damage, top
        local first_due = here(redis.pcall('ZRANGE', p .. 'scheduled', '0', '0', 'WITHSCORES'))
        if first_due.err then
            damage = key_damage(p .. 'scheduled', 'zset') or (p .. 'scheduled cannot be read')
        else
            top = here(redis.pcall('ZREVRANGE', p .. 'priorities', '0', '0'))
            if top.err then
                damage = key_damage(p .. 'priorities', 'zset') or (p .. 'priorities cannot be read')
            end
            top = top[1]
        end
        local due_now = not damage and first_due[2] and tonumber(first_due[2]) <= now
        local plan = {}
        if not damage and (top or due_now) then
            damage = structure_damage(p, {'running', 'dead'})
            if not damage and whole(meta[3]) then damage = key_damage(p .. 'starts', 'zset') end
            if not damage and due_now then plan, damage = plan_promote(p, now, PROMOTE_LIMIT) end
        end
        if damage then
            note_damage(qi, damage)
            skipped[qi] = true
        elseif top or due_now then
            apply_promote(p, now, plan)
            -- How many this queue may start now: its limits' room, at most what the worker wants.
            local wanted_here = max_jobs - #jobs
            local room = wanted_here
            local rate, window = whole(meta[3]), whole(meta[4])
            local in_window = 0
            if rate and window and rate > 0 and window > 0 then
                redis.call('ZREMRANGEBYSCORE', p .. 'starts', '-inf', now - window)
                in_window = redis.call('ZCARD', p .. 'starts')
                room = math.min(room, math.max(0, rate - in_window))
            else
                rate = nil
            end
            local concurrency = whole(meta[5])
            local full = false  -- the concurrency limit leaves no room
            if concurrency and concurrency > 0 then
                local free = math.max(0, concurrency - redis.call('ZCARD', p .. 'running'))
                full = free <= room and free < wanted_here
                room = math.min(room, free)
            end
            local first = #jobs + 1
            local drained = false  -- seen empty: no need to ask again below
            local left_in_list = false  -- the last list taken from still holds jobs
            -- The highest priority read above holds while nothing was promoted.
            local known_top = #plan == 0 and top or nil
            running = {}
            while #jobs < first - 1 + room do
                local prio = known_top or redis.call('ZREVRANGE', p .. 'priorities', '0', '0')[1]
                known_top = nil
                if not prio then drained = true; break end
                local list = p .. 'waiting:' .. prio
                local wanted = first - 1 + room - #jobs
                local ids = here(redis.pcall('LPOP', list, tostring(wanted)))  -- Redis >= 6.2
                if type(ids) == 'table' and ids.err then
                    -- Not a list (LPOP wrote nothing): this queue stops here; what it gave is kept.
                    note_damage(qi, key_damage(list, 'list') or (list .. ' cannot be read'))
                    drained = nil
                    break
                end
                ids = ids or {}
                left_in_list = #ids >= wanted and redis.call('LLEN', list) > 0
                if not left_in_list then redis.call('ZREM', p .. 'priorities', prio) end
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
            -- Jobs still wait: the list last taken from holds more, or another priority does.
            local more = drained == false and (left_in_list or redis.call('ZCARD', p .. 'priorities') > 0)
            if drained == nil then
                -- Damaged: the wake-ups are left as they are.
            elseif more and taken < wanted_here then
                -- Held back by a limit while jobs wait. Pending wake-ups are stale: the next
                -- start is possible when the hint says (rate) or when a running job ends (its
                -- end wakes).
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
            -- What was promoted left the scheduled set: the next is read again.
            if #plan > 0 then first_due = redis.call('ZRANGE', p .. 'scheduled', '0', '0', 'WITHSCORES') end
        else
            -- Nothing waits: pending wake-ups are stale. Any later enqueue pushes a new one.
            redis.call('DEL', p .. 'wake')
        end
        if not damage and first_due[2] then
            local wait = math.max(0, tonumber(first_due[2]) - now)
            if next_due < 0 or wait < next_due then next_due = wait end
        end
    end
end

-- A worker about to wait learns when its next schedule tick falls (workq-schedule add wakes it).
-- A queue found damaged is left out; a tick set of another type is named in `damaged`.
if #jobs < max_jobs then
    for qi = 1, #KEYS do
        if metas[qi] and not skipped[qi] then
            local key = ARGV[7 + qi] .. 'ticks'
            local first = here(redis.pcall('ZRANGE', key, '0', '0', 'WITHSCORES'))
            if first.err then
                note_damage(qi, key_damage(key, 'zset') or (key .. ' cannot be read'))
            elseif first[2] then
                local wait = math.max(0, tonumber(first[2]) - now)
                if next_tick < 0 or wait < next_tick then next_tick = wait end
            end
        end
    end
end

for qi = 1, #KEYS do
    if damage_of[qi] then
        damaged[#damaged + 1] = qi
        damaged[#damaged + 1] = damage_of[qi]
    end
end
local out = {next_due, next_tick, holds, damaged, settled}
for _, job in ipairs(jobs) do out[#out + 1] = job end
return out
