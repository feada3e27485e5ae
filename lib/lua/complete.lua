-- complete: holders report successes; each job becomes succeeded with its result, kept for
-- the result TTL. One call settles one job or a batch of them (a busy worker sends the
-- successes that finished while its previous settle was on the way): each job is judged and
-- recorded on its own, exactly as if it came alone. The body is complete_jobs in
-- common/helpers.lua, shared with claim.lua (a worker's successes ride with its next claim when
-- one goes; this script carries them when none does).
-- KEYS[1] <p>meta
-- ARGV[1] prefix   ARGV[2] result TTL ms
-- ARGV[3..] one group of four per job: id, token, result bytes, bytes of the handler's output
--           dropped beyond --max-result (0: the result is whole)
-- Returns one status per job, in order: 1 succeeded; 2 already settled by this token (a
-- retried settle: nothing changes); 0 refused: the token no longer holds the job; 3 its record
-- cannot be a job: dead-lettered with the reason `corrupt`, the result kept on it.
-- This is the hot path of every job: the meta is read and written once per call, and each
-- record read once and written once. Its first write is an HDEL: it goes through at maxmemory.
local meta = read_meta(KEYS[1], {'version', 'succeeded', 'rate_minute', 'rate_count',
                                   'limit_concurrency'})
local at = {}
for i = 3, #ARGV, 4 do at[#at + 1] = i end
return complete_jobs(ARGV[1], {key = KEYS[1], succeeded = meta[2], rate_minute = meta[3],
                               rate_count = meta[4], limit_concurrency = meta[5]},
                     tonumber(ARGV[2]), now_ms(), ARGV, at)
