--[[ release-key: gives up a claim on an idempotency key, if `owner` still holds it.
KEYS[1] the key's claim, a semaphore (`<base>sem:key:<key>`)
ARGV[1] owner
Returns: 1 released, 0 not held by owner
]]
return redis.call('ZREM', KEYS[1], ARGV[1])
