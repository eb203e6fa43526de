-- KEYS: the paused-until keys of some sources  ARGV: none
-- returns the milliseconds left in each pause (0: none), on this server's clock: on a
-- cluster the time must be the clock of the node that holds the keys
-- uses: permit
local now = server_ms()
local left = {}
for i, key in ipairs(KEYS) do
  local untl = tonumber(redis.call('GET', key) or '0')
  left[i] = math.max(0, untl - now)
end
return left
