-- KEYS[1] due zset  KEYS[2] leases zset  KEYS[3] set of sources with a backlog
-- ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max watches  ARGV[4] watch hash key prefix
-- ARGV[5] source key prefix  ARGV[6] JSON {source: [rate per s, burst, own?, most?]}
-- ARGV[7] reservation horizon ms  ARGV[8] shared room (optional)
-- The caller's workers: a source may take `own` watches (those kept for it), then more
-- from the room all sources share (ARGV[8]) while it lasts, `most` at most; beyond
-- that the source is refused as when its limiter is. Without `own`, no such bound.
-- Moves expired leases back to due (their holder died) and revokes them: the lease
-- token is bumped, so a late holder's writes are refused as stale. Then grants slots
-- within the horizon from each source's limiter, taking turns: one from each source's
-- backlog (due watches its limiter refused before, best priority first: the `prio`
-- field, due time less the poll's worth, see poll/priority.py), then the next due
-- watch in due order, and again. A due watch whose source has a backlog, or refuses,
-- joins that backlog (KEYS[3] lists the sources that have one): a backlog is sorted
-- once, never rescanned, and holds no other source's watches back. Granted watches
-- are leased (token bumped) with the delay before their request.
-- returns {id, token, doc, delay ms, id, token, doc, delay ms, ...}
-- uses: permit
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
