--[[ claim-key: takes (or extends) the lease on an idempotency key: a semaphore of one holder
(lib/semaphore.lua), unless a success is already stored under the key.
KEYS[1] the key's record, a hash: tid (first task id), rec (outcome JSON), ok ('1' once a success
        is stored)
KEYS[2] the key's claim, a semaphore (`<base>sem:key:<key>`)
ARGV[1] owner, ARGV[2] leaseMs
Returns: { 'acquired' } | { 'busy' } | { 'done', record JSON }
]]
--@include clock
--@include semaphore

local h = redis.call('HMGET', KEYS[1], 'ok', 'rec')
if h[1] == '1' then return { 'done', h[2] } end
if acquireHold(KEYS[2], ARGV[1], 1, tonumber(ARGV[2]), nowMs()) then return { 'acquired' } end
return { 'busy' }
