-- KEYS[1] due zset  KEYS[2] leases zset  KEYS[3] set of sources with a backlog
-- KEYS[4] ready: the sources with a backlog, by when their limiter may grant again
-- (ms on the callers' clock, as due times are; now or earlier when it may at once)
-- KEYS[5..4+4S] per source in ARGV[8..]: its backlog, GCRA state, paused-until, sent counter
-- KEYS[5+4S..] the watch hashes of the ids in ARGV, in their order there
-- ARGV[1] now ms  ARGV[2] lease ms  ARGV[3] max watches
-- ARGV[4] JSON {source: [rate per s, burst, own?, most?]}  ARGV[5] reservation horizon ms;
-- on a partition, JSON {source: [ms until asking again helps, each slot's delay ms]}
-- instead: the slots the fleet's limiters granted this claim (lua/grant.lua), whose
-- keys a partition's script may not touch (its GCRA, pause and sent keys go unused)
-- ARGV[6] shared room (-1: none)  ARGV[7] S, then S source names: the first T take
-- turns from their backlogs, the others only meet their due watches
-- then: T; '1' when a source not named has no limit (the caller named every source
-- that has one), else it is left due; '1' when more are due than the caller read;
-- e and e expired leases; d and d
-- due watches (due order); per turn-taking source, h and h of its backlog's first
-- watches (best first)
-- The caller read these just before (RedisStore.claim): each is checked again here, and
-- one another replica took meanwhile is passed over.
-- The caller's workers: a source may take `own` watches (those kept for it), then more
-- from the room all sources share (ARGV[6]) while it lasts, `most` at most; beyond
-- that the source is refused as when its limiter is. Without `own`, no such bound.
-- Moves expired leases back to due (their holder died) and revokes them: the lease
-- token is bumped, so a late holder's writes are refused as stale. Then grants slots
-- within the horizon from each source's limiter, taking turns: one from each source's
-- backlog (due watches its limiter refused before, best priority first: the `prio`
-- field, due time less the poll's worth, see poll/priority.py), then the next due
-- watch in due order, and again. A due watch whose source has a backlog, or refuses,
-- joins that backlog (KEYS[3] lists the sources that have one): a backlog is sorted
-- once, never rescanned, and holds no other source's watches back. A source refused
-- by its limiter is scored in KEYS[4] by when asking again helps, so a caller with
-- thousands of sources names only those ready and those its due watches belong to,
-- not every source (RedisStore._claim_round). Granted watches
-- are leased (token bumped) with the delay before their request.
-- returns {id, token, {source, kind, job, at, doc}, delay ms, ..., more}: more is 1 when this call ran out of
-- what the caller read (more is due, or another replica took some) before it had
-- granted ARGV[3], or stopped at a backlog head it was not given: the caller asks again
-- uses: permit
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local limits = cjson.decode(ARGV[4])
local horizon = tonumber(ARGV[5])
local allowed = nil  -- a partition's: granted by the fleet's limiters
if not horizon then allowed = cjson.decode(ARGV[5]) end
local used = {}
local shared = tonumber(ARGV[6])
local nsources = tonumber(ARGV[7])
local skey = {}  -- source → index before its four keys
local sources = {}
for j = 1, nsources do
  sources[j] = ARGV[7 + j]
  skey[sources[j]] = 4 + 4 * (j - 1)
end
local at = 8 + nsources
local turns = tonumber(ARGV[at])
local all_named = ARGV[at + 1] == '1'
local read_all = ARGV[at + 2] ~= '1'
at = at + 3
local nth = 4 + 4 * nsources
local wkey = {}  -- watch id → its hash key
local function list()
  local n = tonumber(ARGV[at])
  local out = {}
  for i = 1, n do
    out[i] = ARGV[at + i]
    wkey[out[i]] = KEYS[nth + i]
  end
  at = at + n + 1
  nth = nth + n
  return out
end
local expired = list()
local ids = list()
for j = 1, turns do list() end  -- the backlog heads: declared, read live below
local raced = false  -- a candidate was taken meanwhile
local halted = false  -- a backlog's head is one the caller did not read
for _, id in ipairs(expired) do
  local until_ms = redis.call('ZSCORE', KEYS[2], id)
  if until_ms and tonumber(until_ms) <= now then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[1], now, id)
    redis.call('HINCRBY', wkey[id], 'lease', 1)
    ids[#ids + 1] = id
  end
end
local server_now = server_ms()
local sent = {}
local refused = {}
local out = {}
local function backlog(source) return KEYS[skey[source] + 1] end
-- true and the delay before sending, or false (the source is refused for this claim;
-- its place in ready says when asking again helps: now when only this caller's room
-- ran out)
local function admit(source)
  if refused[source] then return false end
  local lim = limits[source]
  if not lim then return true, 0 end
  local taken = sent[source] or 0
  local beyond_own = lim[3] and taken >= tonumber(lim[3])
  if lim[3] and ((lim[4] and taken >= tonumber(lim[4])) or (beyond_own and shared == 0)) then
    refused[source] = true
    redis.call('ZADD', KEYS[4], now, source)
    return false
  end
  local k = skey[source]
  local granted, ms
  if allowed then
    local a = allowed[source] or {0}  -- none asked for: asking again helps at once
    local i = (used[source] or 0) + 1
    granted, ms = a[i + 1] ~= nil, tonumber(a[i + 1] or a[1])
    if granted then used[source] = i end
  else
    granted, ms = reserve(KEYS[k + 2], KEYS[k + 3], tonumber(lim[1]), tonumber(lim[2]),
                          server_now, horizon)
  end
  if not granted then
    refused[source] = true
    redis.call('ZADD', KEYS[4], now + ms, source)
    return false
  end
  if beyond_own and shared > 0 then shared = shared - 1 end
  sent[source] = (sent[source] or 0) + 1
  return true, ms
end
local function lease(id, key, source, delay)
  redis.call('ZREM', KEYS[1], id)
  if skey[source] then redis.call('ZREM', backlog(source), id) end
  local token = redis.call('HINCRBY', key, 'lease', 1)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
  out[#out + 1] = id
  out[#out + 1] = token
  out[#out + 1] = redis.call('HMGET', key, 'source', 'kind', 'job', 'at', 'doc')
  out[#out + 1] = tostring(math.ceil(delay))
end
-- one grant from a source's backlog, its live head; false when it has none to give now
local waiting = {}
local has_backlog = {}
local function from_backlog(source)
  while true do
    local head = redis.call('ZRANGE', backlog(source), 0, 0)[1]
    if not head then
      redis.call('SREM', KEYS[3], source)
      redis.call('ZREM', KEYS[4], source)
      has_backlog[source] = false
      return false
    end
    local key = wkey[head]
    if not key then
      -- a head the caller did not read (another replica changed the backlog): grant
      -- nothing more, so the source keeps its turn in the caller's next round
      halted = true
      return false
    end
    if redis.call('HGET', key, 'state') ~= 'watching' then
      redis.call('ZREM', backlog(source), head)
    else
      local ok, delay = admit(source)
      if not ok then return false end
      lease(head, key, source, delay)
      redis.call('ZADD', KEYS[4], 'XX', now, source)  -- behind those ready before: turns
      return true
    end
  end
end
for j = 1, nsources do
  local source = sources[j]
  if redis.call('SISMEMBER', KEYS[3], source) == 1 then
    has_backlog[source] = true
    if j <= turns then waiting[#waiting + 1] = source end
  elseif j <= turns then
    redis.call('ZREM', KEYS[4], source)  -- ready without a backlog (one rolled back)
  end
end
-- a due watch joins its source's backlog: the source is ready when its limiter may
-- grant, sooner than a score set under an older limit or pause
local function mark_ready(source)
  local lim = limits[source]
  local k = skey[source]
  local rate, burst = 0, 1
  if lim then rate, burst = tonumber(lim[1]), tonumber(lim[2]) end
  local wait
  if allowed then wait = tonumber((allowed[source] or {0})[1])
  else wait = wait_ms(KEYS[k + 2], KEYS[k + 3], rate, burst, server_now, horizon) end
  redis.call('ZADD', KEYS[4], 'LT', now + wait, source)
end
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
  if halted then break end
  -- the next due watch: leased, or put in its source's backlog
  while #out < limit * 4 and next_due <= #ids do
    local id = ids[next_due]
    next_due = next_due + 1
    local due = redis.call('ZSCORE', KEYS[1], id)
    local key = wkey[id]
    local h = redis.call('HMGET', key, 'state', 'source', 'prio')
    if not due or tonumber(due) > now then
      raced = true  -- another replica took it, or it was put off meanwhile
    elseif h[1] ~= 'watching' then
      redis.call('ZREM', KEYS[1], id)
    elseif not skey[h[2]] and (limits[h[2]] or not all_named) then
      raced = true  -- a source the caller declared no keys for: left due
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
        if refused[source] then
          redis.call('ZADD', KEYS[4], 'NX', now, source)
        else
          mark_ready(source)
        end
        has_backlog[source] = true
      end
      progressed = true
      break
    end
  end
  if not progressed then break end
end
if not allowed then  -- a grant counted its slots
  for source, n in pairs(sent) do count_sent(KEYS[skey[source] + 4], server_now, n) end
end
local short = #out < limit * 4 and next_due > #ids
out[#out + 1] = (halted or (short and (raced or not read_all))) and 1 or 0
return out
