-- KEYS[1] watch key (source:kind:job → id)  KEYS[2] watch hash of ARGV[1]
-- KEYS[3] due zset  KEYS[4] watches zset  KEYS[5] the watch hash of ARGV[5]
-- ARGV[1] new watch id  ARGV[2] now ms  ARGV[3] source  ARGV[4] doc
-- ARGV[5] the watch id the caller expects the lookup key to hold ('' for none)
-- ARGV[6] head start ms  ARGV[7] '1': found by discovery
-- returns {1, id} when created, {0, existing id} when already watched, {2, ''} when
-- discovery finds a job whose watch an operator deleted (a registration by hand
-- watches it again), {3, existing id} when the key holds a watch other than ARGV[5]
-- (the caller asks again with that one's hash in KEYS[5]). A lookup key whose watch is
-- gone (evicted, or restored from an older snapshot) is replaced.
-- A new watch is due now, queued (and prioritised) as if due ARGV[6] earlier: when more
-- is due than a source's budget allows, new registrations go first, yet no watch waits
-- behind them for longer than the head start.
local existing = redis.call('GET', KEYS[1])
if existing == 'deleted' and ARGV[7] == '1' then return {2, ''} end
if existing and existing ~= 'deleted' then
  if existing ~= ARGV[5] then return {3, existing} end
  if redis.call('EXISTS', KEYS[5]) == 1 then return {0, existing} end
end
redis.call('SET', KEYS[1], ARGV[1])
local due = tonumber(ARGV[2]) - tonumber(ARGV[6])
redis.call('HSET', KEYS[2], 'state', 'watching', 'source', ARGV[3], 'lease', 0, 'doc', ARGV[4],
           'prio', due)
redis.call('ZADD', KEYS[3], due, ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
return {1, ARGV[1]}
