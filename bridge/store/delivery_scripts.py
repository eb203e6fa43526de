"""Lua scripts of the delivery engine. A delivery is a hash {status, sub, lease, doc}."""

from __future__ import annotations

# Outbox entry → one delivery per matching subscription, then the entry is acked.
# KEYS[1] outbox stream  KEYS[2] due zset  KEYS[3] deliveries zset
# ARGV[1] group  ARGV[2] entry id  ARGV[3] now ms  ARGV[4] delivery hash prefix
# ARGV[5..] per delivery: id, subscription id, doc
# Delivery ids are deterministic (event + subscription): a retried call creates nothing twice.
# returns the number of deliveries created
FANOUT = """
local created = 0
for i = 5, #ARGV, 3 do
  local key = ARGV[4] .. ARGV[i]
  if redis.call('EXISTS', key) == 0 then
    local doc = cjson.decode(ARGV[i + 2])
    redis.call('HSET', key, 'status', 'pending', 'sub', ARGV[i + 1], 'event', doc['event_id'],
               'lease', 0, 'doc', ARGV[i + 2])
    redis.call('ZADD', KEYS[2], ARGV[3], ARGV[i])
    redis.call('ZADD', KEYS[3], ARGV[3], ARGV[i])
    created = created + 1
  end
end
if ARGV[2] ~= '' then redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) end
return created
"""

# KEYS[1] due zset  KEYS[2] leases zset
# ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max deliveries  ARGV[4] delivery hash prefix
# ARGV[5] event key prefix
# returns {id, token, doc, event JSON or false, ...}
# Expired leases (a dead process) come back first.
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
  if status == 'pending' or status == 'failed' then
    local token = redis.call('HINCRBY', key, 'lease', 1)
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
    out[#out + 1] = id
    out[#out + 1] = token
    out[#out + 1] = redis.call('HGET', key, 'doc')
    out[#out + 1] = redis.call('GET', ARGV[5] .. redis.call('HGET', key, 'event'))
  end
end
return out
"""

# KEYS[1] delivery hash  KEYS[2] due zset  KEYS[3] leases zset  KEYS[4] parked zset
# ARGV[1] id  ARGV[2] lease token  ARGV[3] new status  ARGV[4] doc
# ARGV[5] next attempt ms ('' for none)  ARGV[6] retention ms  ARGV[7] '1' to park
# returns 'ok' | 'stale' | 'gone'
RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 'gone'
end
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[2] then return 'stale' end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'doc', ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[7] == '1' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
elseif ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
end
if ARGV[3] == 'succeeded' or ARGV[3] == 'dead' then
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
else
  redis.call('PERSIST', KEYS[1])
end
return 'ok'
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

# KEYS[1] parked zset  KEYS[2] due zset  ARGV[1] now ms
# Moves every parked delivery of a re-enabled subscription back to the queue.
# returns how many
UNPARK = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[2], ARGV[1], id) end
redis.call('DEL', KEYS[1])
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
