-- reap: takes back jobs whose lease lapsed: their worker vanished, froze or was cut off. A job
-- is taken back when its own lease lapses, never earlier: a worker whose heartbeat went silent
-- (lost in the registry) may only be frozen or partitioned, and a longer --lease is a promise
-- that its holder has that long. The lapse counts as an attempt (it was counted at claim); the
-- job goes back to the head of its waiting list, or is dead when attempts are spent, or
-- cancelled when a user asked for it. The token stays on the record, so that a holder that
-- merely froze may still settle the job if nobody claimed it since.
-- Also promotes due scheduled jobs, so that counts stay true while no worker claims, and applies
-- the dead-letter cap, so that dead letters age out even while none die. A running
-- job whose record is missing or not a hash becomes a dead letter with a reason.
-- At most `limit` jobs per call, so that one call never holds the server long: the caller
-- calls again at once while `more` says that lapsed leases remain.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] limit   ARGV[3] result TTL ms
-- Returns { jobs taken back (dead-lettered corrupt records included), more (1: call again) }.
local p = ARGV[1]
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local meta = redis.call('HMGET', KEYS[1], 'version', 'dead_max', 'dead_max_age')
check_version(KEYS[1], false, meta[1])
local now = now_ms()
promote_due(p, now, 1000)
trim_dead(p, now, {meta[2], meta[3]})

local lapsed = redis.call('ZRANGEBYSCORE', p .. 'running', '-inf', now, 'LIMIT', 0, limit)

local count = 0
for _, id in ipairs(lapsed) do
    if redis.call('ZREM', p .. 'running', id) == 1 then
        local f = {}
        if redis.call('TYPE', p .. 'job:' .. id).ok == 'hash' then
            f = redis.call('HMGET', p .. 'job:' .. id, 'state', 'attempts', 'max', 'prio', 'unique', 'cancel', 'worker')
            f.hash = true
        else
            count = count + 1
            dead_corrupt(p, id, now, 'the job record was missing or not a hash when its lease was reaped')
        end
        local problem = f.hash and state_problem(f[1])
        if problem then
            count = count + 1
            dead_corrupt(p, id, now, problem .. ' (found when its lease was reaped)')
        elseif f[1] == 'running' then
            count = count + 1
            local attempts, max = tonumber(f[2]) or 0, tonumber(f[3]) or 1
            redis.call('HDEL', p .. 'job:' .. id, 'lease')
            redis.call('HINCRBY', KEYS[1], 'failed', 1)
            add_error(p, id, now, attempts, 'lease',
                      'the lease lapsed: worker ' .. (f[7] or '?') .. ' stopped renewing it (killed, frozen or cut off)')
            if f[6] == '1' then
                make_cancelled(p, id, now, f[5], ttl)
            elseif attempts >= max then
                make_dead(p, id, now, f[5])
            else
                push_waiting(p, id, tonumber(f[4]) or 0, now, true)
                wake(p .. 'wake')
            end
        end
    end
end
return {count, #lapsed == limit and 1 or 0}
