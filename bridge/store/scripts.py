"""Lua scripts: every state change that must be atomic across replicas.

Each script is headed by its KEYS, ARGV and return value. Scripts are idempotent
where redis-py may retry them after a timeout: transitions are compare-and-set on
the watch's lease token and state, and event ids are deterministic.
"""

from __future__ import annotations

# KEYS[1] watch key (source:kind:job → id)  KEYS[2] watch hash of ARGV[1]
# KEYS[3] due zset  KEYS[4] watches zset
# ARGV[1] new watch id  ARGV[2] now ms  ARGV[3..] field, value pairs of the new watch
# returns {1, id} when created, {0, existing id} when already watched
REGISTER = """
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1])
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
return {1, ARGV[1]}
"""

# KEYS[1] due zset  KEYS[2] leases zset
# ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max watches  ARGV[4] watch hash key prefix
# Moves expired leases back to due (their holder died), then leases up to ARGV[3]
# due watches, bumping each watch's lease token (a fencing token).
# returns {id, token, {hash field, value, ...}, id, token, {...}, ...}
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
  if redis.call('HGET', key, 'state') == 'watching' then
    local token = redis.call('HINCRBY', key, 'lease', 1)
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
    out[#out + 1] = id
    out[#out + 1] = token
    out[#out + 1] = redis.call('HGETALL', key)
  end
end
return out
"""

# Shared guard: the caller must still hold the lease and the watch must be running.
_GUARD = """
local id = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  return 'gone'
end
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[2] then return 'stale' end
if redis.call('HGET', KEYS[1], 'state') ~= 'watching' then
  redis.call('ZREM', KEYS[3], id)
  return 'finished'
end
"""

# KEYS[1] watch hash  KEYS[2] due zset  KEYS[3] leases zset
# ARGV[1] watch id  ARGV[2] lease token  ARGV[3] next poll ms  ARGV[4..] field, value pairs
# returns 'ok' | 'gone' (deleted meanwhile) | 'stale' (lease lost) | 'finished'
RESCHEDULE = (
    _GUARD
    + """
if #ARGV > 3 then
  local fields = {}
  for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(fields))
end
redis.call('ZREM', KEYS[3], id)
redis.call('ZADD', KEYS[2], ARGV[3], id)
return 'ok'
"""
)

# The transactional outbox: the terminal compare-and-set and the event in one step.
# KEYS[1] watch hash  KEYS[2] due zset  KEYS[3] leases zset  KEYS[4] watch key
# KEYS[5] event string  KEYS[6] events zset  KEYS[7] watch events zset  KEYS[8] outbox stream
# ARGV[1] watch id  ARGV[2] lease token  ARGV[3] now ms  ARGV[4] retention ms
# ARGV[5] event id  ARGV[6] event type  ARGV[7] event JSON  ARGV[8..] field, value pairs
# returns 'terminal' | 'gone' | 'stale' | 'finished'
FINISH = (
    _GUARD
    + """
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
local retention = tonumber(ARGV[4])
redis.call('PEXPIRE', KEYS[1], retention)
redis.call('PEXPIRE', KEYS[4], retention)
if redis.call('EXISTS', KEYS[5]) == 0 then
  redis.call('SET', KEYS[5], ARGV[7], 'PX', retention)
  redis.call('ZADD', KEYS[6], ARGV[3], ARGV[5])
  redis.call('ZADD', KEYS[7], ARGV[3], ARGV[5])
  redis.call('PEXPIRE', KEYS[7], retention)
  redis.call('XADD', KEYS[8], '*', 'event_id', ARGV[5], 'type', ARGV[6], 'watch_id', id)
end
return 'terminal'
"""
)

# KEYS[1] watch hash  KEYS[2] due  KEYS[3] leases  KEYS[4] watch key  KEYS[5] watches
# ARGV[1] watch id
# returns 1 when deleted, 0 when there was no such watch
DELETE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end
return redis.call('DEL', KEYS[1])
"""

# The fleet-wide limiter: a 429 pause, then GCRA, both on Redis server time.
# KEYS[1] gcra TAT  KEYS[2] paused-until
# ARGV[1] rate per second  ARGV[2] burst
# returns {1, '0'} when allowed, {0, wait ms as a string} when not
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return {0, tostring(paused - now)} end
local interval = 1000 / tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - (tonumber(ARGV[2]) - 1) * interval
if now < allow_at then return {0, tostring(math.ceil(allow_at - now))} end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, '0'}
"""

# KEYS[1] paused-until  ARGV[1] pause ms
# Extends (never shortens) the source's pause. returns the pause end (server ms)
PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= untl then return tostring(current) end
redis.call('SET', KEYS[1], tostring(untl), 'PX', tonumber(ARGV[1]) + 1000)
return tostring(untl)
"""

# KEYS[1] key  ARGV[1] expected value
# Deletes the key only if it still holds the expected value. returns 1 or 0
DELETE_IF_EQUALS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
