-- KEYS[1] watch hash  KEYS[2] due  KEYS[3] leases  KEYS[4] legacy lookup key
-- KEYS[5] watches  KEYS[6] the backlog of the watch's source
-- ARGV[1] watch id  ARGV[2] retention ms
-- The hash becomes a tombstone for ARGV[2]: discovery leaves the job be meanwhile, and
-- the lease count goes on if it is watched again (a holder from before cannot write).
-- A legacy watch's lookup key says 'deleted' as long.
-- returns 1 when deleted, 0 when there was no such watch
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'state', 'lease')
if not h[1] or h[1] == 'deleted' then return 0 end
if redis.call('GET', KEYS[4]) == ARGV[1] then
  redis.call('SET', KEYS[4], 'deleted', 'PX', ARGV[2])
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'deleted', 'lease', h[2] or 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
