-- KEYS[1] watch key (source:kind:job → id)  KEYS[2] watch hash of ARGV[1]
-- KEYS[3] due zset  KEYS[4] watches zset  KEYS[5] the watch hash of ARGV[5]
-- ARGV[1] new watch id  ARGV[2] now ms  ARGV[3] source  ARGV[4] doc
-- ARGV[5] the watch id the caller expects the lookup key to hold ('' for none)
-- ARGV[6] head start ms  ARGV[7] '1': found by discovery
-- returns {code, id} as register_one in lua/registering.lua says
-- uses: registering
return register_one(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
                    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
