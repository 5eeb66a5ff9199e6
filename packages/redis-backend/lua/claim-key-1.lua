--[[ claim-key: takes (or extends) the lease on an idempotency key.
KEYS[1] the key's record, a hash: tid (first task id), rec (outcome JSON), ok ('1' once a success
        is stored), own (the claiming delivery's token), until (claim end, ms)
ARGV[1] owner, ARGV[2] leaseMs
Returns: { 'acquired' } | { 'busy' } | { 'done', record JSON }
]]
--@include clock

local owner, leaseMs = ARGV[1], tonumber(ARGV[2])
local now = nowMs()
local h = redis.call('HMGET', KEYS[1], 'ok', 'rec', 'own', 'until')
if h[1] == '1' then return { 'done', h[2] } end
if h[3] and h[3] ~= owner and tonumber(h[4]) > now then return { 'busy' } end
redis.call('HSET', KEYS[1], 'own', owner, 'until', now + leaseMs)
-- The claim must outlive its lease even when the record is new or about to expire.
if redis.call('PTTL', KEYS[1]) < leaseMs then redis.call('PEXPIRE', KEYS[1], leaseMs) end
return { 'acquired' }
