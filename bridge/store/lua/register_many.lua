-- KEYS[1] due zset  KEYS[2] watches zset; then per registration: the legacy lookup key
-- (source:kind:job → id), the watch's hash, the hash of the watch the caller expects
-- the legacy key to name
-- ARGV[1] now ms  ARGV[2] head start ms; then per registration: watch id, source, kind,
-- job id, created (unix ms), doc, the expected watch id ('' for none), '1' when found
-- by discovery
-- returns {code, id, lease, code, id, lease, ...}: three per registration, in order, as
-- register_one in lua/registering.lua says. One call for a batch: one reply to read,
-- where a call each cost the client a parsed reply per watch.
-- uses: registering
local out = {}
local n = (#KEYS - 2) / 3
for i = 0, n - 1 do
  local k, a = 3 + 3 * i, 3 + 8 * i
  local answer = register_one(KEYS[k], KEYS[k + 1], KEYS[1], KEYS[2], KEYS[k + 2],
                              ARGV[a], ARGV[1], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
                              ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[2], ARGV[a + 7])
  out[#out + 1] = answer[1]
  out[#out + 1] = answer[2]
  out[#out + 1] = answer[3]
end
return out
