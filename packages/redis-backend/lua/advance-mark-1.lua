--[[ advance-mark: raises a named mark (epoch ms) unless it is already higher — an atomic max, so
schedulers on many hosts can all record the last tick they handled without a lock.
KEYS[1] the marks hash (<prefix>:marks)
ARGV[1] mark name
ARGV[2] candidate value (integer epoch ms)
Returns: the mark's value after the call, as a string
]]
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local candidate = tonumber(ARGV[2])
if current == nil or current < candidate then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return ARGV[2]
end
return tostring(current)
