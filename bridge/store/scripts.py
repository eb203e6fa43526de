"""Lua scripts: every state change that must be atomic across replicas.

A watch is a hash {state, source, lease, doc}: `doc` is the watch as JSON, the other
fields are what the scripts compare. Each script is headed by its KEYS, ARGV and
return value. Scripts are idempotent where redis-py may retry them after a timeout:
transitions are compare-and-set on the lease token and state, and event ids are
deterministic.
"""

from __future__ import annotations

# KEYS[1] watch key (source:kind:job → id)  KEYS[2] watch hash of ARGV[1]
# KEYS[3] due zset  KEYS[4] watches zset
# ARGV[1] new watch id  ARGV[2] now ms  ARGV[3] source  ARGV[4] doc
# ARGV[5] watch hash key prefix  ARGV[6] head start ms  ARGV[7] '1': found by discovery
# returns {1, id} when created, {0, existing id} when already watched, {2, ''} when
# discovery finds a job whose watch an operator deleted (a registration by hand
# watches it again). A lookup key whose watch is gone (evicted, or restored from an
# older snapshot) is replaced.
# A new watch is due now, queued (and prioritised) as if due ARGV[6] earlier: when more
# is due than a source's budget allows, new registrations go first, yet no watch waits
# behind them for longer than the head start.
REGISTER = """
local existing = redis.call('GET', KEYS[1])
if existing == 'deleted' and ARGV[7] == '1' then return {2, ''} end
if existing and redis.call('EXISTS', ARGV[5] .. existing) == 1 then return {0, existing} end
redis.call('SET', KEYS[1], ARGV[1])
local due = tonumber(ARGV[2]) - tonumber(ARGV[6])
redis.call('HSET', KEYS[2], 'state', 'watching', 'source', ARGV[3], 'lease', 0, 'doc', ARGV[4],
           'prio', due)
redis.call('ZADD', KEYS[3], due, ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
return {1, ARGV[1]}
"""

# The fleet-wide politeness check, on Redis server time: a 429 pause, then GCRA.
_PERMIT = """
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Requests granted per source and 10 s window (server time), kept 30 s: budget use.
local function count_sent(prefix, source, now, n)
  local key = prefix .. source .. ':sent:' .. math.floor(now / 10000)
  redis.call('INCRBY', key, n)
  redis.call('PEXPIRE', key, 30000)
end

-- A slot at most `horizon` ms ahead (the twin of poll/ratelimit.reserve). Returns
-- true and the delay before sending, or false and the ms until asking again helps.
-- `limiter` names the GCRA state (a source, or "NAME:token"); `source` the 429 pause.
-- A third value says why a slot was refused: 'paused' or 'busy'.
local function reserve(prefix, limiter, source, rate, burst, now, horizon)
  local paused = tonumber(redis.call('GET', prefix .. source .. ':paused_until') or '0')
  if paused > now then return false, paused - now, 'paused' end
  if rate <= 0 then return true, 0 end
  local key = prefix .. limiter .. ':gcra'
  local interval = 1000 / rate
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local send_at = tat - (burst - 1) * interval
  if send_at < now then send_at = now end
  if send_at - now > horizon then return false, math.ceil(send_at - now - horizon), 'busy' end
  local new_tat = tat + interval
  -- to the microsecond: tostring keeps 14 digits, and each slot would lose a little
  redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  return true, send_at - now
end
"""

# KEYS[1] due zset  KEYS[2] leases zset  KEYS[3] set of sources with a backlog
# ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max watches  ARGV[4] watch hash key prefix
# ARGV[5] source key prefix  ARGV[6] JSON {source: [rate per s, burst, own?, most?]}
# ARGV[7] reservation horizon ms  ARGV[8] shared room (optional)
# The caller's workers: a source may take `own` watches (those kept for it), then more
# from the room all sources share (ARGV[8]) while it lasts, `most` at most; beyond
# that the source is refused as when its limiter is. Without `own`, no such bound.
# Moves expired leases back to due (their holder died) and revokes them: the lease
# token is bumped, so a late holder's writes are refused as stale. Then grants slots
# within the horizon from each source's limiter, taking turns: one from each source's
# backlog (due watches its limiter refused before, best priority first: the `prio`
# field, due time less the poll's worth, see poll/priority.py), then the next due
# watch in due order, and again. A due watch whose source has a backlog, or refuses,
# joins that backlog (KEYS[3] lists the sources that have one): a backlog is sorted
# once, never rescanned, and holds no other source's watches back. Granted watches
# are leased (token bumped) with the delay before their request.
# returns {id, token, doc, delay ms, id, token, doc, delay ms, ...}
CLAIM = (
    _PERMIT
    + """
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local limits = cjson.decode(ARGV[6])
local horizon = tonumber(ARGV[7])
local shared = tonumber(ARGV[8] or '-1')
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('HINCRBY', ARGV[4] .. id, 'lease', 1)
end
local server_now = server_ms()
local sent = {}
local refused = {}
local out = {}
local function backlog(source) return ARGV[5] .. source .. ':backlog' end
-- true and the delay before sending, or false (the source is refused for this claim)
local function admit(source)
  if refused[source] then return false end
  local lim = limits[source]
  if not lim then return true, 0 end
  local taken = sent[source] or 0
  local beyond_own = lim[3] and taken >= tonumber(lim[3])
  if lim[3] and ((lim[4] and taken >= tonumber(lim[4])) or (beyond_own and shared == 0)) then
    refused[source] = true
    return false
  end
  local granted, ms = reserve(ARGV[5], source, source, tonumber(lim[1]), tonumber(lim[2]),
                              server_now, horizon)
  if not granted then refused[source] = true; return false end
  if beyond_own and shared > 0 then shared = shared - 1 end
  sent[source] = (sent[source] or 0) + 1
  return true, ms
end
local function lease(id, key, source, delay)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', backlog(source), id)
  local token = redis.call('HINCRBY', key, 'lease', 1)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
  out[#out + 1] = id
  out[#out + 1] = token
  out[#out + 1] = redis.call('HGET', key, 'doc')
  out[#out + 1] = tostring(math.ceil(delay))
end
-- one grant from a source's backlog; false when it has none to give now
local waiting = {}
local has_backlog = {}
local function from_backlog(source)
  while true do
    local head = redis.call('ZRANGE', backlog(source), 0, 0)[1]
    if not head then
      redis.call('SREM', KEYS[3], source)
      has_backlog[source] = false
      return false
    end
    local key = ARGV[4] .. head
    if redis.call('HGET', key, 'state') ~= 'watching' then
      redis.call('ZREM', backlog(source), head)
    else
      local ok, delay = admit(source)
      if not ok then return false end
      lease(head, key, source, delay)
      return true
    end
  end
end
for _, source in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  waiting[#waiting + 1] = source
  has_backlog[source] = true
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0,
                       math.max(limit * 16, 1000))
local next_due = 1
while #out < limit * 4 do
  local progressed = false
  local still = {}
  for _, source in ipairs(waiting) do
    if #out < limit * 4 and from_backlog(source) then
      progressed = true
      still[#still + 1] = source
    end
  end
  waiting = still
  -- the next due watch: leased, or put in its source's backlog
  while #out < limit * 4 and next_due <= #ids do
    local id, due = ids[next_due], ids[next_due + 1]
    next_due = next_due + 2
    local key = ARGV[4] .. id
    local h = redis.call('HMGET', key, 'state', 'source', 'prio')
    if h[1] ~= 'watching' then
      redis.call('ZREM', KEYS[1], id)
    else
      local source = h[2]
      local ok, delay = false, 0
      if not has_backlog[source] then ok, delay = admit(source) end
      if ok then
        lease(id, key, source, delay)
      else
        redis.call('ZREM', KEYS[1], id)
        redis.call('ZADD', backlog(source), tonumber(h[3] or due), id)
        redis.call('SADD', KEYS[3], source)
        has_backlog[source] = true
      end
      progressed = true
      break
    end
  end
  if not progressed then break end
end
for source, n in pairs(sent) do count_sent(ARGV[5], source, server_now, n) end
return out
"""
)

# A slot for one request outside the claim (a retry after a 401, a token request), at
# most ARGV[5] ms ahead. The token endpoint has its own limiter (source + ':token'), so
# a 401 storm cannot become a token storm; the source's 429 pause holds for both.
# KEYS: none  ARGV[1] source key prefix  ARGV[2] limiter name  ARGV[3] rate per s
# ARGV[4] burst  ARGV[5] horizon ms  ARGV[6] the source (its pause)
# returns {'ok', ms to wait} or {'paused' | 'busy', ms until asking again can help}
# (nothing taken when refused)
ACQUIRE = (
    _PERMIT
    + """
local now = server_ms()
local granted, ms, why = reserve(ARGV[1], ARGV[2], ARGV[6], tonumber(ARGV[3]),
                                 tonumber(ARGV[4]), now, tonumber(ARGV[5]))
if not granted then return {why, tostring(math.max(1, math.ceil(ms)))} end
count_sent(ARGV[1], ARGV[2], now, 1)
return {'ok', tostring(math.ceil(ms))}
"""
)

# Shared guard: the caller must still hold the lease and the watch must be running.
_GUARD = """
local id = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  return 'gone'
end
local h = redis.call('HMGET', KEYS[1], 'lease', 'state')
if h[1] ~= ARGV[2] then return 'stale' end
if h[2] ~= 'watching' then
  redis.call('ZREM', KEYS[3], id)
  return 'finished'
end
"""

# KEYS[1] watch hash  KEYS[2] due zset  KEYS[3] leases zset
# ARGV[1] watch id  ARGV[2] lease token  ARGV[3] next poll ms  ARGV[4] doc
# ARGV[5] priority key ms (lower first when the source's budget is short; '' keeps it)
# returns 'ok' | 'gone' (deleted meanwhile) | 'stale' (lease lost) | 'finished'
RESCHEDULE = (
    _GUARD
    + """
redis.call('HSET', KEYS[1], 'doc', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'prio', ARGV[5]) end
redis.call('ZREM', KEYS[3], id)
redis.call('ZADD', KEYS[2], ARGV[3], id)
return 'ok'
"""
)

# Many reschedules in one call: the same guard and write as RESCHEDULE, per watch.
# KEYS[1] due zset  KEYS[2] leases zset
# ARGV[1] watch hash key prefix, then per watch: id, lease token, next poll ms, doc,
# priority key ms ('' keeps it)
# returns one verdict per watch, as RESCHEDULE
RESCHEDULE_MANY = """
local out = {}
for i = 2, #ARGV, 5 do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  local verdict = 'ok'
  local h = redis.call('HMGET', key, 'lease', 'state')
  if not h[2] then
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
"""

# The transactional outbox: the terminal compare-and-set and the event in one step.
# KEYS[1] watch hash  KEYS[2] due zset  KEYS[3] leases zset  KEYS[4] watch key
# KEYS[5] event string  KEYS[6] events zset  KEYS[7] watch events zset  KEYS[8] outbox stream
# ARGV[1] watch id  ARGV[2] lease token  ARGV[3] now ms  ARGV[4] retention ms
# ARGV[5] event id  ARGV[6] event type  ARGV[7] event JSON  ARGV[8] new state  ARGV[9] doc
# returns 'terminal' | 'gone' | 'stale' | 'finished'
FINISH = (
    _GUARD
    + """
redis.call('HSET', KEYS[1], 'state', ARGV[8], 'doc', ARGV[9])
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
# KEYS[6] the backlog of the watch's source
# ARGV[1] watch id  ARGV[2] ms the lookup key says 'deleted' (discovery leaves the job be)
# returns 1 when deleted, 0 when there was no such watch
DELETE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
if redis.call('GET', KEYS[4]) == ARGV[1] then
  redis.call('SET', KEYS[4], 'deleted', 'PX', ARGV[2])
end
return redis.call('DEL', KEYS[1])
"""

# KEYS[1] paused-until  ARGV[1] pause ms
# Extends (never shortens) the source's pause. returns the pause end (server ms)
PAUSE = (
    _PERMIT
    + """
local untl = server_ms() + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= untl then return tostring(current) end
redis.call('SET', KEYS[1], tostring(untl), 'PX', tonumber(ARGV[1]) + 1000)
return tostring(untl)
"""
)

# KEYS[1] key  ARGV[1] expected value
# Deletes the key only if it still holds the expected value. returns 1 or 0
DELETE_IF_EQUALS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] key  ARGV[1] expected value  ARGV[2] ms
# Renews a lock's lease only while its holder still holds it. returns 1 or 0
EXTEND_IF_EQUALS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# A page of a sorted-set index after a (score, member) cursor, in Redis' own order
# (score, then member bytewise), so entries sharing a score are never skipped or repeated.
# KEYS[1] zset  ARGV[1] cursor score ('' for the start)  ARGV[2] cursor member  ARGV[3] count
# returns {member, score, member, score, ...}
PAGE = """
local function before(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local start = 0
if ARGV[1] ~= '' then
  local score, member = tonumber(ARGV[1]), ARGV[2]
  local rank = redis.call('ZRANK', KEYS[1], member)
  if rank and tonumber(redis.call('ZSCORE', KEYS[1], member)) == score then
    start = rank + 1
  else
    -- the cursor's entry is gone: binary search among the entries of its score
    local lo = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[1])
    local hi = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if before(member, redis.call('ZRANGE', KEYS[1], mid, mid)[1]) then
        hi = mid
      else
        lo = mid + 1
      end
    end
    start = lo
  end
end
return redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[3]) - 1, 'WITHSCORES')
"""

# KEYS[1] set of sources with a backlog  ARGV[1] source key prefix
# returns {source, watches in its backlog, ...}
BACKLOGS = """
local out = {}
for _, source in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = source
  out[#out + 1] = redis.call('ZCARD', ARGV[1] .. source .. ':backlog')
end
return out
"""

# KEYS[1] current generation (hash)  KEYS[2] previous generation
# ARGV[1] bucket  ARGV[2] jobs per generation  ARGV[3] time to keep an idle histogram, ms
# One finished job's duration. When the current generation is full it becomes the
# previous one (the older is dropped): the histogram holds the last one to two
# generations of jobs, so it follows a change of the typical duration. A second run
# after a retried timeout counts one job twice: harmless in a histogram.
# returns the jobs in the current generation
RECORD_DURATION = """
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if n >= tonumber(ARGV[2]) then
  redis.call('RENAME', KEYS[1], KEYS[2])
  n = 0
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if n > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return n
"""

# A source's health, compare-and-set, and the event that says it changed, in one step:
# once per change, fleet-wide, however many replicas see it at the same moment.
# KEYS[1] health hash  KEYS[2] event string  KEYS[3] events zset  KEYS[4] outbox
# ARGV[1] '1' healthy or '0'  ARGV[2] reason  ARGV[3] now (s)  ARGV[4] now ms
# ARGV[5] retention ms  ARGV[6] event id ('' for none)  ARGV[7] event JSON  ARGV[8] type
# returns 1 when this call changed the health, else 0
SET_HEALTH = """
local current = redis.call('HGET', KEYS[1], 'healthy')
if current == ARGV[1] or (not current and ARGV[1] == '1') then return 0 end
redis.call('HSET', KEYS[1], 'healthy', ARGV[1], 'reason', ARGV[2], 'since', ARGV[3])
if ARGV[6] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], ARGV[7], 'PX', ARGV[5])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[6])
  redis.call('XADD', KEYS[4], '*', 'event_id', ARGV[6], 'type', ARGV[8], 'watch_id', '')
end
return 1
"""
