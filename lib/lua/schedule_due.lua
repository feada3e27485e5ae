-- schedule_due: what a worker's firer needs from one queue: the schedules whose tick is due, and
-- until when some worker was watching the queue. Records this worker as watching it: a worker
-- that watches vouches to fire the queue's ticks until its deadline, so a tick that falls
-- before every watcher's deadline was not missed, only late (a later worker fires it). Ticks
-- after the last deadline fell while no worker ran: --catch-up decides for those.
-- Not a change of any job's state.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] worker id   ARGV[3] watch ms (0: the worker stops watching now)
-- ARGV[4] at most this many due schedules
-- Returns { now ms, watched until ms before this call (-1: never), earliest tick ms of the
-- queue (-1: none), due, due, ... }, each due { name, generation, next tick ms, cron, tz,
-- catch_up } of an unpaused schedule whose next tick is not after now.
local p, worker = ARGV[1], ARGV[2]
local watch_ms, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local WATCH_KEPT_MS = 86400000  -- a deadline older than a day tells nothing any more
local now = now_ms()
local watchers = p .. 'watchers'
-- Checked before the first write (see "Damage" in common/helpers.lua): the meta, the ticks and
-- the watchers; a schedule record is judged below, before anything is written.
check_structures(p, {'ticks', 'watchers'})
local last = redis.call('ZRANGE', watchers, -1, -1, 'WITHSCORES')
local watched_until = tonumber(last[2]) or -1
local out = {now, watched_until, -1}
local first = redis.call('ZRANGE', p .. 'ticks', 0, 0, 'WITHSCORES')
if first[2] then out[3] = tonumber(first[2]) end
local due = redis.call('ZRANGEBYSCORE', p .. 'ticks', '-inf', now, 'LIMIT', 0, limit)
local stale = {}
for _, name in ipairs(due) do
    -- A record that is not a hash, or whose next tick is not a number workq wrote, is no
    -- schedule (workq-schedule add replaces it): its tick goes, as a missing one's does.
    local f = here(redis.pcall('HMGET', p .. 'schedule:' .. name, 'gen', 'next', 'cron', 'tz',
                               'catch_up', 'paused'))
    if not f.err and f[2] and whole(f[2]) and f[3] and f[6] ~= '1' then
        out[#out + 1] = {name, f[1] or '0', f[2], f[3], f[4] or 'UTC', f[5] or 'latest'}
    else
        -- A tick entry without a schedule (or of a paused one): nothing to fire.
        stale[#stale + 1] = name
    end
end
-- The writes, after every read: the watch, then the stale ticks.
redis.call('ZADD', watchers, now + watch_ms, worker)
redis.call('ZREMRANGEBYSCORE', watchers, '-inf', now - WATCH_KEPT_MS)
if #stale > 0 then call_chunked('ZREM', p .. 'ticks', stale) end
return out
