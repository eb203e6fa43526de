-- Outbox entries → one delivery per matching subscription each, then each entry is acked.
-- KEYS[1] outbox stream  KEYS[2] due zset  KEYS[3] deliveries zset  KEYS[4] leases zset
-- KEYS[5] dead zset  KEYS[6..] the delivery hashes, in ARGV's order
-- ARGV[1] group  ARGV[2] now ms
-- ARGV[3..] per entry: entry id ('' for none: a replay or a ping), n, then n times
--   delivery id, subscription id, doc, mode
-- Delivery ids are deterministic (event + subscription): a retried call creates nothing twice.
-- Progress (mode 'progress'): one delivery per job and subscription, a channel: a newer
-- progress event replaces the one not sent yet, or waits in `next` while one is in
-- flight (RECORD_MANY sends it after). mode 'after:ID': a job's terminal event, which
-- waits (CLAIM) while that progress channel has an attempt in flight or one to make
-- now; progress waiting for a later retry, or parked, is superseded by the terminal event.
-- returns the number of deliveries created
local created = 0
local i = 3
local nth = 5
while i <= #ARGV do
  local entry, n = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  for _ = 1, n do
    nth = nth + 1
    local id, key, mode = ARGV[i], KEYS[nth], ARGV[i + 3]
    local doc = cjson.decode(ARGV[i + 2])
    if redis.call('EXISTS', key) == 0 then
      redis.call('HSET', key, 'status', 'pending', 'sub', ARGV[i + 1], 'event', doc['event_id'],
                 'lease', 0, 'doc', ARGV[i + 2])
      if string.sub(mode, 1, 6) == 'after:' then
        redis.call('HSET', key, 'after', string.sub(mode, 7))
      end
      redis.call('ZADD', KEYS[2], ARGV[2], id)
      redis.call('ZADD', KEYS[3], ARGV[2], id)
      created = created + 1
    elseif mode == 'progress' and redis.call('HGET', key, 'event') ~= doc['event_id'] then
      if redis.call('ZSCORE', KEYS[4], id) then
        redis.call('HSET', key, 'next', ARGV[i + 2])
      else
        redis.call('HSET', key, 'status', 'pending', 'event', doc['event_id'], 'doc', ARGV[i + 2])
        redis.call('ZREM', KEYS[5], id)  -- a channel that died carries the newer event now
        redis.call('HDEL', key, 'next')
        redis.call('PERSIST', key)
        redis.call('ZADD', KEYS[2], ARGV[2], id)
        redis.call('ZADD', KEYS[3], ARGV[2], id)
      end
    end
    i = i + 4
  end
  if entry ~= '' then redis.call('XACK', KEYS[1], ARGV[1], entry) end
end
return created
