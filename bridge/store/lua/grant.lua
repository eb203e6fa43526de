-- Slots from the fleet-wide limiters for one partition's claim (store/grants.py): a
-- claim on a partition cannot touch the fleet's keys, so it asks here first.
-- KEYS per source: its GCRA state, paused-until, sent counter (3 each, ARGV's order)
-- ARGV[1] reservation horizon ms, then per source: rate per s, burst, slots wanted
-- returns per source {n, GCRA state after ('' when none), 10 s window counted in,
--   ms until asking again can help (0: now), then n delays in ms}: slots taken in
--   order, until the limiter or its pause refuses one
-- uses: permit
local now = server_ms()
local horizon = tonumber(ARGV[1])
local out = {}
for j = 1, #KEYS / 3 do
  local gcra, pause, sent = KEYS[3 * j - 2], KEYS[3 * j - 1], KEYS[3 * j]
  local rate, burst = tonumber(ARGV[3 * j - 1]), tonumber(ARGV[3 * j])
  local want = tonumber(ARGV[3 * j + 1])
  local delays = {}
  for _ = 1, want do
    local granted, ms = reserve(gcra, pause, rate, burst, now, horizon)
    if not granted then break end
    delays[#delays + 1] = tostring(math.ceil(ms))
  end
  if #delays > 0 and rate > 0 then count_sent(sent, now, #delays) end  -- budget use
  local wait = wait_ms(gcra, pause, rate, burst, now, horizon)
  out[#out + 1] = #delays
  out[#out + 1] = redis.call('GET', gcra) or ''
  out[#out + 1] = math.floor(now / 10000)
  out[#out + 1] = tostring(math.ceil(wait))
  for _, d in ipairs(delays) do out[#out + 1] = d end
end
return out
