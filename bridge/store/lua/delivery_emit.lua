-- An event that no watch transition produced (subscription.disabled).
-- KEYS[1] event string  KEYS[2] events zset  KEYS[3] outbox
-- ARGV[1] event id  ARGV[2] now ms  ARGV[3] retention ms  ARGV[4] JSON  ARGV[5] type
-- returns 1 when written, 0 when it existed
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'event_id', ARGV[1], 'type', ARGV[5], 'watch_id', '')
return 1
