-- KEYS[1] watch hash  KEYS[2] due  KEYS[3] leases  KEYS[4] watch key  KEYS[5] watches
-- KEYS[6] the backlog of the watch's source
-- ARGV[1] watch id  ARGV[2] ms the lookup key says 'deleted' (discovery leaves the job be)
-- returns 1 when deleted, 0 when there was no such watch
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
if redis.call('GET', KEYS[4]) == ARGV[1] then
  redis.call('SET', KEYS[4], 'deleted', 'PX', ARGV[2])
end
return redis.call('DEL', KEYS[1])
