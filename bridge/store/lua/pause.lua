-- KEYS[1] paused-until  ARGV[1] pause ms
-- Extends (never shortens) the source's pause. returns the pause end (server ms)
-- uses: permit
local untl = server_ms() + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= untl then return tostring(current) end
redis.call('SET', KEYS[1], tostring(untl), 'PX', tonumber(ARGV[1]) + 1000)
return tostring(untl)
