-- The fleet-wide politeness check, on Redis server time: a 429 pause, then GCRA.
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Requests granted per 10 s window (server time), a hash of window → count kept 30 s:
-- budget use. Windows older than the last two are dropped as the next one starts.
local function count_sent(key, now, n)
  local window = math.floor(now / 10000)
  if redis.call('HINCRBY', key, window, n) == n then
    for _, old in ipairs(redis.call('HKEYS', key)) do
      if tonumber(old) < window - 2 then redis.call('HDEL', key, old) end
    end
  end
  redis.call('PEXPIRE', key, 30000)
end

-- How long until `reserve` would grant a slot within `horizon` (0: at once), without
-- taking one; and why not now: 'paused' or 'busy'.
local function wait_ms(gcra, pause, rate, burst, now, horizon)
  local paused = tonumber(redis.call('GET', pause) or '0')
  if paused > now then return paused - now, 'paused' end
  if rate <= 0 then return 0 end
  local interval = 1000 / rate
  local tat = tonumber(redis.call('GET', gcra) or '0')
  local send_at = math.max(tat, now) - (burst - 1) * interval
  if send_at - now > horizon then return math.ceil(send_at - now - horizon), 'busy' end
  return 0
end

-- A slot at most `horizon` ms ahead (the twin of poll/ratelimit.reserve). Returns
-- true and the delay before sending, or false and the ms until asking again helps.
-- `gcra` is the limiter's state (a source's, or its token endpoint's); `pause` the
-- source's 429 pause. A third value says why a slot was refused: 'paused' or 'busy'.
local function reserve(gcra, pause, rate, burst, now, horizon)
  local paused = tonumber(redis.call('GET', pause) or '0')
  if paused > now then return false, paused - now, 'paused' end
  if rate <= 0 then return true, 0 end
  local interval = 1000 / rate
  local tat = tonumber(redis.call('GET', gcra) or '0')
  if tat < now then tat = now end
  local send_at = tat - (burst - 1) * interval
  if send_at < now then send_at = now end
  if send_at - now > horizon then return false, math.ceil(send_at - now - horizon), 'busy' end
  local new_tat = tat + interval
  -- to the microsecond: tostring keeps 14 digits, and each slot would lose a little
  redis.call('SET', gcra, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  return true, send_at - now
end
