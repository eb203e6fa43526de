-- The transactional outbox: the terminal compare-and-set and the event in one step.
-- KEYS[1] watch hash  KEYS[2] due zset  KEYS[3] leases zset  KEYS[4] legacy lookup key
-- KEYS[5] event string  KEYS[6] events zset  KEYS[7] watch events zset  KEYS[8] outbox stream
-- ARGV[1] watch id  ARGV[2] lease token  ARGV[3] now ms  ARGV[4] retention ms
-- ARGV[5] event id  ARGV[6] event type  ARGV[7] event JSON  ARGV[8] new state  ARGV[9] doc
-- returns 'terminal' | 'gone' | 'stale' | 'finished'
-- uses: guard
redis.call('HSET', KEYS[1], 'state', ARGV[8], 'doc', ARGV[9])
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
local retention = tonumber(ARGV[4])
redis.call('PEXPIRE', KEYS[1], retention)
redis.call('PEXPIRE', KEYS[4], retention)
if redis.call('EXISTS', KEYS[5]) == 0 then
  redis.call('SET', KEYS[5], ARGV[7], 'PX', retention)
  redis.call('ZADD', KEYS[6], ARGV[3], ARGV[5])
  redis.call('ZADD', KEYS[7], ARGV[3], ARGV[5])
  redis.call('PEXPIRE', KEYS[7], retention)
  redis.call('XADD', KEYS[8], '*', 'event_id', ARGV[5], 'type', ARGV[6], 'watch_id', id)
end
return 'terminal'
