-- KEYS[1] set of sources with a backlog  KEYS[2] ready (lua/claim.lua)  ARGV: none
-- Every source with a backlog gets a place in ready, first in line when it had none:
-- versions before 0.3 kept only the set. Run when the set holds more sources than
-- ready does. returns how many were added
local added = 0
for _, source in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  added = added + redis.call('ZADD', KEYS[2], 'NX', 0, source)
end
return added
