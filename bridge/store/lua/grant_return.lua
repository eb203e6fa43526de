-- Slots a claim was granted (lua/grant.lua) and did not use, given back: the last ones,
-- while no one took a slot after them (the GCRA state is still what the grant left).
-- KEYS per source: its GCRA state, sent counter (2 each, ARGV's order)
-- ARGV per source: the state the grant left, slots unused, ms between slots, the
--   10 s window the grant counted them in
-- returns how many sources' slots were given back (the others are spent: never more
-- than the rate is sent, a little less at worst)
local back = 0
for j = 1, #KEYS / 2 do
  local gcra, sent = KEYS[2 * j - 1], KEYS[2 * j]
  local left, n = ARGV[4 * j - 3], tonumber(ARGV[4 * j - 2])
  if left ~= '' and redis.call('GET', gcra) == left then
    local tat = tonumber(left) - n * tonumber(ARGV[4 * j - 1])
    redis.call('SET', gcra, string.format('%.3f', tat), 'KEEPTTL')
    if tonumber(redis.call('HGET', sent, ARGV[4 * j]) or '0') >= n then
      redis.call('HINCRBY', sent, ARGV[4 * j], -n)
    end
    back = back + 1
  end
end
return back
