-- Shared: drops up to `max` expired records of a kind (its hash and its expiry index together).
local function pruneExpired(hash, index, now, max)
  local dead = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, max)
  if #dead > 0 then
    redis.call('HDEL', hash, unpack(dead))
    redis.call('ZREM', index, unpack(dead))
  end
end
