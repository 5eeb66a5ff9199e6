--[[ release-task: ends a claim on a task id at once (a retry or a give-back must not wait for
it to lapse), if `owner` still holds it.
KEYS[1] the claim, `base .. 'c:' .. id` (see claim-task-2.lua)
ARGV[1] owner
Returns: 1 released, 0 not held by owner
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
