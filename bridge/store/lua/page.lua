-- A page of a sorted-set index after a (score, member) cursor, in Redis' own order
-- (score, then member bytewise), so entries sharing a score are never skipped or repeated.
-- KEYS[1] zset  ARGV[1] cursor score ('' for the start)  ARGV[2] cursor member  ARGV[3] count
-- returns {member, score, member, score, ...}
local function before(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local start = 0
if ARGV[1] ~= '' then
  local score, member = tonumber(ARGV[1]), ARGV[2]
  local rank = redis.call('ZRANK', KEYS[1], member)
  if rank and tonumber(redis.call('ZSCORE', KEYS[1], member)) == score then
    start = rank + 1
  else
    -- the cursor's entry is gone: binary search among the entries of its score
    local lo = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[1])
    local hi = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if before(member, redis.call('ZRANGE', KEYS[1], mid, mid)[1]) then
        hi = mid
      else
        lo = mid + 1
      end
    end
    start = lo
  end
end
return redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[3]) - 1, 'WITHSCORES')
