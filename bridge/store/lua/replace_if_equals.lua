-- KEYS[1] key  ARGV[1] expected value  ARGV[2] new value
-- Sets the new value only if the key still holds the expected one, keeping its time
-- to live. returns 1 or 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
