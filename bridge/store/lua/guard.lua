-- Shared guard: the caller must still hold the lease and the watch must be running.
local id = ARGV[1]
local h = redis.call('HMGET', KEYS[1], 'lease', 'state')
if not h[2] or h[2] == 'deleted' then
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  return 'gone'
end
if h[1] ~= ARGV[2] then return 'stale' end
if h[2] ~= 'watching' then
  redis.call('ZREM', KEYS[3], id)
  return 'finished'
end
