--[[ release-key: gives up a claim on an idempotency key, if `owner` still holds it.
KEYS[1] the key's record (see claim-key-1.lua)
ARGV[1] owner
Returns: 1 released, 0 not held by owner
]]
if redis.call('HGET', KEYS[1], 'own') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'own', 'until')
  return 1
end
return 0
