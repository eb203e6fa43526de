-- KEYS[1] source definitions hash  KEYS[2] their version counter
-- KEYS[3] changes: source name by the version that changed it last
-- KEYS[4] deleted sources by when (ms)
-- ARGV[1] 'create' | 'replace' | 'delete'  ARGV[2] source name
-- ARGV[3] its (sealed) document ('' to delete)  ARGV[4] now ms
-- Defines, replaces (only while defined) or deletes (only while defined) a source, and
-- notes the change under a new version, so a replica reads only what changed since
-- the version it knows (RefreshPlan in store/source_defs.py). returns the new version,
-- or 0 when nothing was done (created already; not defined)
local exists = redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1
local op = ARGV[1]
if (op == 'create' and exists) or (op ~= 'create' and not exists) then return 0 end
if op == 'delete' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('ZREM', KEYS[4], ARGV[2])
end
local version = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], version, ARGV[2])
return version
