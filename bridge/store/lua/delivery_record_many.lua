-- The outcome of attempts, several in one call (writes arrive in bursts).
-- KEYS[1] due zset  KEYS[2] leases zset
-- ARGV[1] delivery hash prefix
-- ARGV[2..] per delivery, 8 each: id, lease token, new status, doc,
--   next attempt ms ('' for none), '1' to park, the subscription's parked zset, retention ms
-- All keys share the deployment's {hash tag}, so the derived ones live in the same slot.
-- returns per delivery 'ok' | 'stale' (the lease was lost) | 'gone'
local out = {}
for i = 2, #ARGV, 8 do
  local id, key = ARGV[i], ARGV[1] .. ARGV[i]
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', KEYS[2], id)
    out[#out + 1] = 'gone'
  elseif redis.call('HGET', key, 'lease') ~= ARGV[i + 1] then
    out[#out + 1] = 'stale'
  else
    local status = ARGV[i + 2]
    redis.call('HSET', key, 'status', status, 'doc', ARGV[i + 3])
    redis.call('ZREM', KEYS[2], id)
    local nxt = redis.call('HGET', key, 'next')
    if nxt and (status == 'succeeded' or status == 'dead') then
      -- a progress channel: the newer event that waited goes at once (score 0: due
      -- whatever the clock says)
      redis.call('HSET', key, 'status', 'pending', 'event', cjson.decode(nxt)['event_id'],
                 'doc', nxt)
      redis.call('HDEL', key, 'next')
      redis.call('PERSIST', key)
      redis.call('ZADD', KEYS[1], 0, id)
    else
      if ARGV[i + 5] == '1' then
        redis.call('ZADD', ARGV[i + 6], ARGV[i + 4], id)
      elseif ARGV[i + 4] ~= '' then
        redis.call('ZADD', KEYS[1], ARGV[i + 4], id)
      end
      if status == 'succeeded' or status == 'dead' then
        redis.call('PEXPIRE', key, ARGV[i + 7])
      else
        redis.call('PERSIST', key)
      end
    end
    out[#out + 1] = 'ok'
  end
end
return out
