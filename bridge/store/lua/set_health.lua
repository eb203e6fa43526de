-- A source's health, compare-and-set, and the event that says it changed, in one step:
-- once per change, fleet-wide, however many replicas see it at the same moment.
-- KEYS[1] health hash  KEYS[2] event string  KEYS[3] events zset  KEYS[4] outbox
-- ARGV[1] '1' healthy or '0'  ARGV[2] reason  ARGV[3] now (s)  ARGV[4] now ms
-- ARGV[5] retention ms  ARGV[6] event id ('' for none)  ARGV[7] event JSON  ARGV[8] type
-- returns 1 when this call changed the health, else 0
local current = redis.call('HGET', KEYS[1], 'healthy')
if current == ARGV[1] or (not current and ARGV[1] == '1') then return 0 end
redis.call('HSET', KEYS[1], 'healthy', ARGV[1], 'reason', ARGV[2], 'since', ARGV[3])
if ARGV[6] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], ARGV[7], 'PX', ARGV[5])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[6])
  redis.call('XADD', KEYS[4], '*', 'event_id', ARGV[6], 'type', ARGV[8], 'watch_id', '')
end
return 1
