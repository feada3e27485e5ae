-- dead_delete: removes dead letters for good.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2..] ids   (ARGV[2] = '*' and ARGV[3] = N: the N oldest)
-- Returns { id, 1 deleted | 0 not a dead letter of this queue } pairs, flattened.
local p = ARGV[1]
check_structures(p, {'dead'})
check_version(KEYS[1], false)
local ids = {}
if ARGV[2] == '*' then
    ids = redis.call('ZRANGE', p .. 'dead', 0, tonumber(ARGV[3]) - 1)
else
    for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local out = {}
for _, id in ipairs(ids) do
    local ok = 0
    if redis.call('ZREM', p .. 'dead', id) == 1 then
        redis.call('DEL', p .. 'job:' .. id, p .. 'errors:' .. id, p .. 'corrupt:' .. id)
        ok = 1
    end
    out[#out + 1] = id
    out[#out + 1] = ok
end
return out
