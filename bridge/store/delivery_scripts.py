"""Lua scripts of the delivery engine. A delivery is a hash {status, sub, lease, doc}."""

from __future__ import annotations

# Outbox entries → one delivery per matching subscription each, then each entry is acked.
# KEYS[1] outbox stream  KEYS[2] due zset  KEYS[3] deliveries zset  KEYS[4] leases zset
# ARGV[1] group  ARGV[2] now ms  ARGV[3] delivery hash prefix
# ARGV[4..] per entry: entry id ('' for none: a replay or a ping), n, then n times
#   delivery id, subscription id, doc, mode
# Delivery ids are deterministic (event + subscription): a retried call creates nothing twice.
# Progress (mode 'progress'): one delivery per job and subscription, a channel: a newer
# progress event replaces the one not sent yet, or waits in `next` while one is in
# flight (RECORD_MANY sends it after). mode 'after:ID': a job's terminal event, which
# waits (CLAIM) while that progress channel has an attempt in flight or one to make
# now; progress waiting for a later retry, or parked, is superseded by the terminal event.
# returns the number of deliveries created
FANOUT = """
local created = 0
local i = 4
while i <= #ARGV do
  local entry, n = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  for _ = 1, n do
    local id, key, mode = ARGV[i], ARGV[3] .. ARGV[i], ARGV[i + 3]
    local doc = cjson.decode(ARGV[i + 2])
    if redis.call('EXISTS', key) == 0 then
      redis.call('HSET', key, 'status', 'pending', 'sub', ARGV[i + 1], 'event', doc['event_id'],
                 'lease', 0, 'doc', ARGV[i + 2])
      if string.sub(mode, 1, 6) == 'after:' then
        redis.call('HSET', key, 'after', string.sub(mode, 7))
      end
      redis.call('ZADD', KEYS[2], ARGV[2], id)
      redis.call('ZADD', KEYS[3], ARGV[2], id)
      created = created + 1
    elseif mode == 'progress' and redis.call('HGET', key, 'event') ~= doc['event_id'] then
      if redis.call('ZSCORE', KEYS[4], id) then
        redis.call('HSET', key, 'next', ARGV[i + 2])
      else
        redis.call('HSET', key, 'status', 'pending', 'event', doc['event_id'], 'doc', ARGV[i + 2])
        redis.call('HDEL', key, 'next')
        redis.call('PERSIST', key)
        redis.call('ZADD', KEYS[2], ARGV[2], id)
        redis.call('ZADD', KEYS[3], ARGV[2], id)
      end
    end
    i = i + 4
  end
  if entry ~= '' then redis.call('XACK', KEYS[1], ARGV[1], entry) end
end
return created
"""

# KEYS[1] due zset  KEYS[2] leases zset
# ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max deliveries  ARGV[4] delivery hash prefix
# ARGV[5] event key prefix  ARGV[6] subscriptions version key  ARGV[7] retention ms
# returns {id, token, doc, event JSON or false, ..., subscriptions version}: the version
# read in the same step, so the deliverer attempts with subscriptions as they are now.
# Expired leases (a dead process) come back first.
# A job's terminal event waits while its progress channel has an attempt in flight
# (one lease at most), a progress event not tried yet in the queue (whatever its due
# time: deferred at the subscription's cap, or scored by a replica whose clock runs
# ahead), or a retry due now. A progress event that failed and waits for a later
# retry, or is parked with a disabled subscription, is superseded by it (status
# 'superseded', out of the queue): a receiver's retry schedule never holds the
# terminal event back, nor does a disabled subscription's parked channel.
# The doc's status is rewritten in place: orjson writes "status" before any nested
# value, and no quote inside a string value is unescaped, so the first match is it.
CLAIM = """
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
"""

# The outcome of attempts, several in one call (writes arrive in bursts).
# KEYS[1] due zset  KEYS[2] leases zset
# ARGV[1] delivery hash prefix
# ARGV[2..] per delivery, 8 each: id, lease token, new status, doc,
#   next attempt ms ('' for none), '1' to park, the subscription's parked zset, retention ms
# All keys share the deployment's {hash tag}, so the derived ones live in the same slot.
# returns per delivery 'ok' | 'stale' (the lease was lost) | 'gone'
RECORD_MANY = """
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
"""

# Put a finished or failed delivery back in the queue (API retry, recover).
# KEYS[1] delivery hash  KEYS[2] due zset
# ARGV[1] id  ARGV[2] now ms  ARGV[3] doc
# returns 'ok' | 'gone' | 'busy' (pending or in flight: nothing to do)
REQUEUE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if status ~= 'dead' and status ~= 'failed' then return 'busy' end
redis.call('HSET', KEYS[1], 'status', 'pending', 'doc', ARGV[3])
redis.call('PERSIST', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 'ok'
"""

# KEYS[1] parked zset  KEYS[2] due zset  ARGV[1] first due ms  ARGV[2] ms between two
# ARGV[3] batch size
# Moves a bounded batch of a subscription's parked deliveries back to the queue, spread
# out in time (a long outage must not become a herd). Called until it returns 0.
# returns how many
UNPARK = """
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
local at, step = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, id in ipairs(ids) do redis.call('ZADD', KEYS[2], at + (i - 1) * step, id) end
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return #ids
"""

# An event that no watch transition produced (subscription.disabled).
# KEYS[1] event string  KEYS[2] events zset  KEYS[3] outbox
# ARGV[1] event id  ARGV[2] now ms  ARGV[3] retention ms  ARGV[4] JSON  ARGV[5] type
# returns 1 when written, 0 when it existed
EMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'event_id', ARGV[1], 'type', ARGV[5], 'watch_id', '')
return 1
"""

# KEYS[1] subscription state hash  ARGV[1] now (seconds)
# returns the start of the current run of failures: the stored one, else ARGV[1]
MARK_FAILING = """
local since = redis.call('HGET', KEYS[1], 'failing_since')
if since and since ~= '' then return since end
redis.call('HSET', KEYS[1], 'failing_since', ARGV[1])
return ARGV[1]
"""
