-- KEYS[1] source definitions hash  KEYS[2] their version counter
-- KEYS[3] changes: source name by the version that changed it last
-- KEYS[4] deleted sources by when (ms)
-- KEYS[5..8] the source's cached token, token lock, 429 pause, health
-- ARGV[1] 'create' | 'replace' | 'delete'  ARGV[2] source name
-- ARGV[3] its (sealed) document ('' to delete)  ARGV[4] now ms
-- ARGV[5] replace: the stored document the change was made from (compare-and-set)
-- Defines, replaces or deletes a source, and notes the change under a new version, so
-- a replica reads only what changed since the version it knows (SourceDefStore.
-- read_since). A replace or delete forgets what was learned with the old definition
-- (its token, pause and health: the credentials or the upstream may be others now).
-- returns the new version, or 0 when nothing was done (created already; not defined;
-- changed meanwhile)
local stored = redis.call('HGET', KEYS[1], ARGV[2])
local op = ARGV[1]
if op == 'create' then
  if stored then return 0 end
elseif not stored or (op == 'replace' and stored ~= ARGV[5]) then
  return 0
end
if op == 'delete' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('ZREM', KEYS[4], ARGV[2])
end
if op ~= 'create' then redis.call('DEL', KEYS[5], KEYS[6], KEYS[7], KEYS[8]) end
local version = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], version, ARGV[2])
return version
