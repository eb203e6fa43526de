-- Shared: one registration (register.lua, register_many.lua). Keys: the job's lookup
-- key (source:kind:job → id), the new watch's hash, due, watches, and the hash of the
-- watch the caller expects the lookup key to name. Returns {1, id} when created,
-- {0, existing id} when already watched, {2, ''} when discovery finds a job whose
-- watch an operator deleted (a registration by hand watches it again), {3, existing
-- id} when the key holds a watch other than the expected one (the caller asks again
-- with that one's hash). A lookup key whose watch is gone (evicted, or restored from
-- an older snapshot) is replaced.
-- A new watch is due now, queued (and prioritised) as if due head_start earlier: when
-- more is due than a source's budget allows, new registrations go first, yet no watch
-- waits behind them for longer than the head start.
local function register_one(lookup, hash, due_key, watches, expected_hash,
                            id, now, source, doc, expected, head_start, discovered)
  local existing = redis.call('GET', lookup)
  if existing == 'deleted' and discovered == '1' then return {2, ''} end
  if existing and existing ~= 'deleted' then
    if existing ~= expected then return {3, existing} end
    if redis.call('EXISTS', expected_hash) == 1 then return {0, existing} end
  end
  redis.call('SET', lookup, id)
  local due = tonumber(now) - tonumber(head_start)
  redis.call('HSET', hash, 'state', 'watching', 'source', source, 'lease', 0, 'doc', doc,
             'prio', due)
  redis.call('ZADD', due_key, due, id)
  redis.call('ZADD', watches, now, id)
  return {1, id}
end
