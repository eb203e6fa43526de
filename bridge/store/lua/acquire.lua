-- A slot for one request outside the claim (a retry after a 401, a token request), at
-- most ARGV[5] ms ahead. The token endpoint has its own limiter (source + ':token'), so
-- a 401 storm cannot become a token storm; the source's 429 pause holds for both.
-- KEYS: none  ARGV[1] source key prefix  ARGV[2] limiter name  ARGV[3] rate per s
-- ARGV[4] burst  ARGV[5] horizon ms  ARGV[6] the source (its pause)
-- returns {'ok', ms to wait} or {'paused' | 'busy', ms until asking again can help}
-- (nothing taken when refused)
-- uses: permit
local now = server_ms()
local granted, ms, why = reserve(ARGV[1], ARGV[2], ARGV[6], tonumber(ARGV[3]),
                                 tonumber(ARGV[4]), now, tonumber(ARGV[5]))
if not granted then return {why, tostring(math.max(1, math.ceil(ms)))} end
count_sent(ARGV[1], ARGV[2], now, 1)
return {'ok', tostring(math.ceil(ms))}
