-- KEYS[1] due zset  KEYS[2] leases zset
-- ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max deliveries  ARGV[4] delivery hash prefix
-- ARGV[5] event key prefix  ARGV[6] subscriptions version key  ARGV[7] retention ms
-- returns {id, token, doc, event JSON or false, ..., subscriptions version}: the version
-- read in the same step, so the deliverer attempts with subscriptions as they are now.
-- Expired leases (a dead process) come back first.
-- A job's terminal event waits while its progress channel has an attempt in flight
-- (one lease at most), a progress event not tried yet in the queue (whatever its due
-- time: deferred at the subscription's cap, or scored by a replica whose clock runs
-- ahead), or a retry due now. A progress event that failed and waits for a later
-- retry, or is parked with a disabled subscription, is superseded by it (status
-- 'superseded', out of the queue): a receiver's retry schedule never holds the
-- terminal event back, nor does a disabled subscription's parked channel.
-- The doc's status is rewritten in place: orjson writes "status" before any nested
-- value, and no quote inside a string value is unescaped, so the first match is it.
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], now, id)
end
local out = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local key = ARGV[4] .. id
  local status = redis.call('HGET', key, 'status')
  local after = redis.call('HGET', key, 'after')
  if after and (status == 'pending' or status == 'failed') then
    local akey = ARGV[4] .. after
    local ahead = redis.call('HGET', akey, 'status')
    local due = tonumber(redis.call('ZSCORE', KEYS[1], after) or '')
    if redis.call('ZSCORE', KEYS[2], after) or (ahead == 'pending' and due) or
        (ahead == 'failed' and due and due <= now) then
      redis.call('ZADD', KEYS[1], now + 500, id)
      status = 'waiting'
    else
      if ahead == 'pending' or ahead == 'failed' then
        local adoc = redis.call('HGET', akey, 'doc')
        adoc = string.gsub(adoc, '"status":"%a+"', '"status":"superseded"', 1)
        adoc = string.gsub(adoc, '"next_attempt_at":[^,}]+', '"next_attempt_at":null', 1)
        redis.call('HSET', akey, 'status', 'superseded', 'doc', adoc)
        redis.call('HDEL', akey, 'next')
        redis.call('ZREM', KEYS[1], after)
        redis.call('PEXPIRE', akey, ARGV[7])
      end
    end
  end
  if status == 'pending' or status == 'failed' then
    local token = redis.call('HINCRBY', key, 'lease', 1)
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
    out[#out + 1] = id
    out[#out + 1] = token
    out[#out + 1] = redis.call('HGET', key, 'doc')
    out[#out + 1] = redis.call('GET', ARGV[5] .. redis.call('HGET', key, 'event'))
  end
end
out[#out + 1] = redis.call('GET', ARGV[6]) or '0'
return out
