-- KEYS[1] source definitions hash  KEYS[2] their version counter
-- ARGV[1] source name  ARGV[2] its new (sealed) document
-- Replaces a defined source's document and bumps the version, only while the source is
-- defined (a PATCH racing a DELETE does not bring it back). returns 1 or 0
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
