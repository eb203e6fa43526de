-- Shared: one registration (register.lua, register_many.lua). Keys: the job's legacy
-- lookup key (source:kind:job → id; versions before 0.3 gave watches random ids), the
-- watch's hash (its id derives from the job), due, watches, and the hash of the watch
-- the caller expects the legacy key to name. Returns {1, id, lease} when created,
-- {0, id, ''} when already watched, {2, '', ''} when discovery finds a job whose watch
-- an operator deleted (a registration by hand watches it again), {3, legacy id, ''}
-- when the legacy
-- key holds a watch other than the expected one (the caller asks again with that
-- one's hash). A legacy key whose watch is gone (evicted, or restored from an older
-- snapshot) is dropped.
-- A new watch is due now, queued (and prioritised) as if due head_start earlier: when
-- more is due than a source's budget allows, new registrations go first, yet no watch
-- waits behind them for longer than the head start.
local function register_one(legacy, hash, due_key, watches, expected_hash,
                            id, now, source, kind, job, at, doc, expected, head_start,
                            discovered)
  local existing = redis.call('GET', legacy)
  if existing == 'deleted' and discovered == '1' then return {2, '', ''} end
  if existing and existing ~= 'deleted' then
    if existing ~= expected then return {3, existing, ''} end
    if redis.call('EXISTS', expected_hash) == 1 then return {0, existing, ''} end
    redis.call('DEL', legacy)
  end
  local state = redis.call('HGET', hash, 'state')
  if state == 'deleted' then
    if discovered == '1' then return {2, '', ''} end
    redis.call('PERSIST', hash)
    redis.call('HINCRBY', hash, 'lease', 1)  -- revoked: no holder from before writes
  elseif state then
    return {0, id, ''}
  else
    -- lease tokens start from the server clock (µs), not 0: a job watched again after
    -- its hash expired has the same id, and no holder from before may match a token
    local t = redis.call('TIME')
    redis.call('HSET', hash, 'lease', t[1] .. string.format('%06d', tonumber(t[2])))
  end
  local due = tonumber(now) - tonumber(head_start)
  redis.call('HSET', hash, 'state', 'watching', 'source', source, 'prio', due, 'kind', kind,
             'job', job, 'at', at, 'doc', doc)
  redis.call('ZADD', due_key, due, id)
  redis.call('ZADD', watches, now, id)
  return {1, id, redis.call('HGET', hash, 'lease')}
end
