-- KEYS[1] key  ARGV[1] expected value  ARGV[2] ms
-- Renews a lock's lease only while its holder still holds it. returns 1 or 0
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
