-- notify: asks that the end of each job be pushed to <p>done:<id> (for workq-enqueue --wait on
-- jobs it did not create: an existing --id or --unique holder). Records that do not exist are
-- left alone (no stray keys). Not a change of state.
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2..] ids
-- Returns the number of jobs flagged. A record that is not a hash is left to the scripts that
-- dead-letter it (writing to it would fail half-way through the call).
local p = ARGV[1]
local count = 0
for i = 2, #ARGV do
    local key = p .. 'job:' .. ARGV[i]
    if kind_of(key) == 'hash' then
        redis.call('HSET', key, 'notify', '1')
        count = count + 1
    end
end
return count
