-- reserve_id: reserves caller-chosen job ids for one queue, namespace-wide, before the enqueue
-- that makes them (see reserve_id in common/helpers.lua for the design); or gives back
-- reservations a caller did not use. Not a change of any job's state.
-- KEYS[i] {NS}:id:<id> of each id (the namespace's slot)
-- ARGV[1] queue   ARGV[2] 'reserve' or 'release'
-- Returns one entry per key. reserve: { 1, deadline ms } held by this queue (pass the deadline
-- to the enqueue as its fence); { 0, holder queue, ms left } held by another queue.
-- release: 1 removed, 0 not this queue's.
local queue, mode = ARGV[1], ARGV[2]
local now = now_ms()
local out = {}
for i = 1, #KEYS do
    if mode == 'release' then
        local holder = here(redis.pcall('GET', KEYS[i]))
        if holder == queue then
            redis.call('DEL', KEYS[i])
            out[i] = 1
        else
            out[i] = 0
        end
    else
        local held, a, b = reserve_id(KEYS[i], queue, now)
        if held then out[i] = {1, a} else out[i] = {0, a, b} end
    end
end
return out
