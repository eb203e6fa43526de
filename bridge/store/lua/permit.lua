-- The fleet-wide politeness check, on Redis server time: a 429 pause, then GCRA.
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Requests granted per source and 10 s window (server time), kept 30 s: budget use.
local function count_sent(prefix, source, now, n)
  local key = prefix .. source .. ':sent:' .. math.floor(now / 10000)
  redis.call('INCRBY', key, n)
  redis.call('PEXPIRE', key, 30000)
end

-- A slot at most `horizon` ms ahead (the twin of poll/ratelimit.reserve). Returns
-- true and the delay before sending, or false and the ms until asking again helps.
-- `limiter` names the GCRA state (a source, or "NAME:token"); `source` the 429 pause.
-- A third value says why a slot was refused: 'paused' or 'busy'.
local function reserve(prefix, limiter, source, rate, burst, now, horizon)
  local paused = tonumber(redis.call('GET', prefix .. source .. ':paused_until') or '0')
  if paused > now then return false, paused - now, 'paused' end
  if rate <= 0 then return true, 0 end
  local key = prefix .. limiter .. ':gcra'
  local interval = 1000 / rate
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local send_at = tat - (burst - 1) * interval
  if send_at < now then send_at = now end
  if send_at - now > horizon then return false, math.ceil(send_at - now - horizon), 'busy' end
  local new_tat = tat + interval
  -- to the microsecond: tostring keeps 14 digits, and each slot would lose a little
  redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  return true, send_at - now
end
