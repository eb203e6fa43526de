-- Before rolling back below 0.2: move every source backlog back to the due set.
-- KEYS[1] {PREFIX}:backlogs  ARGV[1] PREFIX
-- redis-cli --eval deploy/rollback-backlogs.lua '{bridge}:backlogs' , bridge
-- (KEYS[1] sends it to the server, or the cluster node, that holds the bridge's keys;
-- every key it touches shares that key's hash tag)
-- returns the number of watches moved
local p = '{' .. ARGV[1] .. '}'
local moved = 0
for _, source in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local queue = p .. ':source:' .. source .. ':backlog'
  for _, id in ipairs(redis.call('ZRANGE', queue, 0, -1)) do
    redis.call('ZADD', p .. ':due', 0, id)
    moved = moved + 1
  end
  redis.call('DEL', queue)
end
redis.call('DEL', KEYS[1])
redis.call('DEL', p .. ':ready')  -- where 0.3 and later keep the sources with a backlog
return moved
