-- KEYS[1] set of sources with a backlog  ARGV[1] source key prefix
-- returns {source, watches in its backlog, ...}
local out = {}
for _, source in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = source
  out[#out + 1] = redis.call('ZCARD', ARGV[1] .. source .. ':backlog')
end
return out
