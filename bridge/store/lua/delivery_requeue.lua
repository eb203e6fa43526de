-- Put a finished or failed delivery back in the queue (API retry, recover).
-- KEYS[1] delivery hash  KEYS[2] due zset  KEYS[3] dead zset
-- ARGV[1] id  ARGV[2] now ms  ARGV[3] doc
-- returns 'ok' | 'gone' | 'busy' (pending or in flight: nothing to do)
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if status ~= 'dead' and status ~= 'failed' then return 'busy' end
redis.call('HSET', KEYS[1], 'status', 'pending', 'doc', ARGV[3])
redis.call('PERSIST', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 'ok'
