-- Many reschedules in one call: the same guard and write as RESCHEDULE, per watch.
-- KEYS[1] due zset  KEYS[2] leases zset  KEYS[3..] the watch hashes, in ARGV's order
-- ARGV per watch: id, lease token, next poll ms, doc, priority key ms ('' keeps it)
-- returns one verdict per watch, as RESCHEDULE
local out = {}
for i = 1, #ARGV, 5 do
  local id = ARGV[i]
  local key = KEYS[2 + (i + 4) / 5]
  local verdict = 'ok'
  local h = redis.call('HMGET', key, 'lease', 'state')
  if not h[2] or h[2] == 'deleted' then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    verdict = 'gone'
  elseif h[1] ~= ARGV[i + 1] then
    verdict = 'stale'
  elseif h[2] ~= 'watching' then
    redis.call('ZREM', KEYS[2], id)
    verdict = 'finished'
  else
    redis.call('HSET', key, 'doc', ARGV[i + 3])
    if ARGV[i + 4] ~= '' then redis.call('HSET', key, 'prio', ARGV[i + 4]) end
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[1], ARGV[i + 2], id)
  end
  out[#out + 1] = verdict
end
return out
