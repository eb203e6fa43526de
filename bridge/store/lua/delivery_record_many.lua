-- The outcome of attempts, several in one call (writes arrive in bursts).
-- KEYS[1] due zset  KEYS[2] leases zset  KEYS[3] dead zset (id by when it died)
-- KEYS[4..] per delivery, in ARGV's order: its hash, its subscription's parked zset
-- ARGV per delivery, 7 each: id, lease token, new status, doc,
--   next attempt ms ('' for none), '1' to park, retention ms
-- returns per delivery 'ok' | 'stale' (the lease was lost) | 'gone'
local out = {}
for i = 1, #ARGV, 7 do
  local n = (i - 1) / 7
  local id, key, parked = ARGV[i], KEYS[4 + 2 * n], KEYS[5 + 2 * n]
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
        redis.call('ZADD', parked, ARGV[i + 4], id)
      elseif ARGV[i + 4] ~= '' then
        redis.call('ZADD', KEYS[1], ARGV[i + 4], id)
      end
      if status == 'dead' then
        -- counted while it is kept (the same retention; the janitor trims the index)
        local t = redis.call('TIME')
        redis.call('ZADD', KEYS[3], t[1] * 1000 + math.floor(t[2] / 1000), id)
      end
      if status == 'succeeded' or status == 'dead' then
        redis.call('PEXPIRE', key, ARGV[i + 6])
      else
        redis.call('PERSIST', key)
      end
    end
    out[#out + 1] = 'ok'
  end
end
return out
