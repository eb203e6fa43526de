-- KEYS[1] source definitions hash
-- ARGV[1] source name  ARGV[2] its document as read  ARGV[3] the same, sealed afresh
-- Writes the freshly sealed document only while the stored one is still the one read
-- (a change meanwhile wins). The content is the same: no version moves. returns 1 or 0
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
