-- KEYS[1] the data marker (any of the bridge's keys would do: on a cluster the call
-- goes to the node that holds them, whose clock the scripts compare with)  ARGV: none
-- returns the server's TIME: {seconds, microseconds}
return redis.call('TIME')
