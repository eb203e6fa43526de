-- KEYS[1] watch hash  KEYS[2] due zset  KEYS[3] leases zset
-- ARGV[1] watch id  ARGV[2] lease token  ARGV[3] next poll ms  ARGV[4] doc
-- ARGV[5] priority key ms (lower first when the source's budget is short; '' keeps it)
-- returns 'ok' | 'gone' (deleted meanwhile) | 'stale' (lease lost) | 'finished'
-- uses: guard
redis.call('HSET', KEYS[1], 'doc', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'prio', ARGV[5]) end
redis.call('ZREM', KEYS[3], id)
redis.call('ZADD', KEYS[2], ARGV[3], id)
return 'ok'
