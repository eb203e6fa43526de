-- KEYS: the backlogs of some sources  ARGV[1] the claim's limit
-- returns one list of watch ids per backlog, in KEYS order (reads only): the first
-- few of each. The claim takes turns, one watch from each source with budget, so with
-- many backlogs each gives a few at most: 2·limit shared by the backlogs that hold
-- any, at least one each, at most limit. A source that could give more than were read
-- stops the claim there (claim.lua's `halted`) and the next round reads again. One
-- reply for every source, where a ZRANGE each cost the client a parsed reply each.
local limit = tonumber(ARGV[1])
local held = 0
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then held = held + 1 end
end
local n = math.min(limit, math.max(1, math.ceil(2 * limit / math.max(1, held))))
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('ZRANGE', key, 0, n - 1)
end
return out
