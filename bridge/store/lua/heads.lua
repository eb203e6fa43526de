-- KEYS: the backlogs of some sources  ARGV[1] how many of each backlog's first watches
-- returns one list of watch ids per backlog, in KEYS order (reads only). One reply for
-- a claim's read of every source's backlog, where a ZRANGE each cost the client a
-- parsed reply per source.
local n = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('ZRANGE', key, 0, n - 1)
end
return out
