-- KEYS[1] due zset  KEYS[2] leases zset  KEYS[3] subscriptions version
-- KEYS[4..] per candidate, in ARGV's order: its hash, the hash of the delivery it waits
--   for (its own when none), its event
-- ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] retention ms  ARGV[4] max deliveries
-- ARGV[5..] per candidate, 4 each: id, 'due' or 'expired', event id, id it waits for ('')
-- The caller read the candidates just before, or remembers what it created
-- (store/deliveries.py): each is checked again here (still due, or its lease still
-- expired; the same event and the same delivery ahead). One whose event or delivery
-- ahead is not what the caller declared is left for the next claim and named in the
-- answer, so the caller reads it afresh.
-- returns {id, token, doc, event JSON or false, ..., ids passed over, their count,
-- subscriptions version}: the version
-- read in the same step, so the deliverer attempts with subscriptions as they are now.
-- Expired leases (a dead process) come back after the due ones (due now).
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
local ids = {}
local keys = {}
local expired = {}
local passed = {}
local limit = tonumber(ARGV[4])
for i = 5, #ARGV, 4 do
  local id, n = ARGV[i], (i - 5) / 4
  local hash, ahead, event = KEYS[4 + 3 * n], KEYS[5 + 3 * n], KEYS[6 + 3 * n]
  local score
  if ARGV[i + 1] == 'expired' then score = redis.call('ZSCORE', KEYS[2], id)
  else score = redis.call('ZSCORE', KEYS[1], id) end
  local h = redis.call('HMGET', hash, 'event', 'after')
  local same = (h[1] or '') == ARGV[i + 2] and (h[2] or '') == ARGV[i + 3]
  if score and tonumber(score) <= now and not same then
    passed[#passed + 1] = id
  elseif score and tonumber(score) <= now then
    if ARGV[i + 1] == 'expired' then
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZADD', KEYS[1], now, id)
      expired[#expired + 1] = id
    else
      ids[#ids + 1] = id
    end
    keys[id] = {hash, ahead, event}
  end
end
for _, id in ipairs(expired) do ids[#ids + 1] = id end
local out = {}
for _, id in ipairs(ids) do
  if #out >= limit * 4 then break end  -- the rest stay due
  redis.call('ZREM', KEYS[1], id)
  local key, akey = keys[id][1], keys[id][2]
  local status = redis.call('HGET', key, 'status')
  local after = redis.call('HGET', key, 'after')
  if after and (status == 'pending' or status == 'failed') then
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
        redis.call('PEXPIRE', akey, ARGV[3])
      end
    end
  end
  if status == 'pending' or status == 'failed' then
    local token = redis.call('HINCRBY', key, 'lease', 1)
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
    out[#out + 1] = id
    out[#out + 1] = token
    out[#out + 1] = redis.call('HGET', key, 'doc')
    out[#out + 1] = redis.call('GET', keys[id][3])
  end
end
for _, id in ipairs(passed) do out[#out + 1] = id end
out[#out + 1] = #passed
out[#out + 1] = redis.call('GET', KEYS[3]) or '0'
return out
