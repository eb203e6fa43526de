-- KEYS[1] legacy lookup key (source:kind:job → id)  KEYS[2] watch hash of ARGV[1]
-- KEYS[3] due zset  KEYS[4] watches zset  KEYS[5] the watch hash of ARGV[8]
-- ARGV[1] watch id  ARGV[2] now ms  ARGV[3] source  ARGV[4] kind  ARGV[5] job id
-- ARGV[6] created (unix ms)  ARGV[7] doc  ARGV[8] the watch id the caller expects the
-- legacy key to hold ('' for none)  ARGV[9] head start ms  ARGV[10] '1': found by discovery
-- returns {code, id, lease} as register_one in lua/registering.lua says
-- uses: registering
return register_one(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
                    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
                    ARGV[9], ARGV[10])
