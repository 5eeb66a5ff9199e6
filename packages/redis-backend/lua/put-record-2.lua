--[[ put-record: writes a coordination record (rule 2 of Coordination).
KEYS[1] the kind's records, a hash: id → JSON
KEYS[2] the kind's expiry index, a sorted set: id → expiry (epoch ms on Redis' clock; inf: none)
ARGV[1] id, ARGV[2] JSON, ARGV[3] ttlMs ('' for a record without a TTL)
]]
--@include clock
--@include records

local now = nowMs()
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3] == '' and 'inf' or now + tonumber(ARGV[3]), ARGV[1])
-- A kind nobody lists still sheds its dead: each write drops a few expired records.
pruneExpired(KEYS[1], KEYS[2], now, 20)
return 1
