-- A slot for one request outside the claim (a retry after a 401, a token request), at
-- most ARGV[3] ms ahead. The token endpoint has its own limiter (source + ':token'), so
-- a 401 storm cannot become a token storm; the source's 429 pause holds for both.
-- KEYS[1] the limiter's GCRA state  KEYS[2] the source's paused-until
-- KEYS[3] the limiter's sent counter
-- ARGV[1] rate per s  ARGV[2] burst  ARGV[3] horizon ms
-- returns {'ok', ms to wait} or {'paused' | 'busy', ms until asking again can help}
-- (nothing taken when refused)
-- uses: permit
local now = server_ms()
local granted, ms, why = reserve(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), now,
                                 tonumber(ARGV[3]))
if not granted then return {why, tostring(math.max(1, math.ceil(ms)))} end
count_sent(KEYS[3], now, 1)
return {'ok', tostring(math.ceil(ms))}
