-- KEYS[1] current generation (hash)  KEYS[2] previous generation
-- ARGV[1] bucket  ARGV[2] jobs per generation  ARGV[3] time to keep an idle histogram, ms
-- One finished job's duration. When the current generation is full it becomes the
-- previous one (the older is dropped): the histogram holds the last one to two
-- generations of jobs, so it follows a change of the typical duration. A second run
-- after a retried timeout counts one job twice: harmless in a histogram.
-- returns the jobs in the current generation
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if n >= tonumber(ARGV[2]) then
  redis.call('RENAME', KEYS[1], KEYS[2])
  n = 0
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if n > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return n
