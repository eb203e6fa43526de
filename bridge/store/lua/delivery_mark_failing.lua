-- KEYS[1] subscription state hash  ARGV[1] now (seconds)
-- returns the start of the current run of failures: the stored one, else ARGV[1]
local since = redis.call('HGET', KEYS[1], 'failing_since')
if since and since ~= '' then return since end
redis.call('HSET', KEYS[1], 'failing_since', ARGV[1])
return ARGV[1]
