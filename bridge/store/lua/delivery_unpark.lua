-- KEYS[1] parked zset  KEYS[2] due zset  ARGV[1] first due ms  ARGV[2] ms between two
-- ARGV[3] batch size
-- Moves a bounded batch of a subscription's parked deliveries back to the queue, spread
-- out in time (a long outage must not become a herd). Called until it returns 0.
-- returns how many
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
local at, step = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, id in ipairs(ids) do redis.call('ZADD', KEYS[2], at + (i - 1) * step, id) end
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return #ids
