-- Before rolling back below 0.2: move every source backlog back to the due set.
-- redis-cli --eval deploy/rollback-backlogs.lua , PREFIX
-- returns the number of watches moved
local p = '{' .. ARGV[1] .. '}'
local moved = 0
for _, source in ipairs(redis.call('SMEMBERS', p .. ':backlogs')) do
  local queue = p .. ':source:' .. source .. ':backlog'
  for _, id in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
    redis.call('ZADD', p .. ':due', 0, id)
    moved = moved + 1
  end
  redis.call('DEL', queue)
end
redis.call('DEL', p .. ':backlogs')
return moved
