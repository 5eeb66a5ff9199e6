--[[ claim-task: takes (or extends) the lease on a task id, for a store kept apart from the broker
(the fence that `store` with an owner checks: store-2.lua).
KEYS[1] the task's record, `base .. 'r:' .. id`    KEYS[2] the claim, `base .. 'c:' .. id` (owner, PX lease)
ARGV[1] owner, ARGV[2] leaseMs
Returns: { 'acquired' } | { 'busy' } | { 'done', record JSON }
  done   a final record is stored for the id (whatever its state): nothing is left to run
  busy   another owner holds the claim and its lease has not ended (server clock, PX)
]]
local record = redis.call('GET', KEYS[1])
if record then return { 'done', record } end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return { 'busy' } end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return { 'acquired' }
