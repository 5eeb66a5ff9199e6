--[[ renew: extends the leases of many deliveries of one queue, each fenced by its token.
KEYS[1] tok    hash id → fencing token
KEYS[2] lease  zset id → lease end
ARGV[1] leaseMs
ARGV[2..] pairs: id, token
Returns: one integer per pair: 1 renewed, 0 lease lost
]]
--@include clock

local untilMs = nowMs() + tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[2], 'XX', untilMs, ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
