--[[ renew: extends the leases of many deliveries of one queue, each fenced by its token.
KEYS[1] task   hash id → task record (see lib/queue.lua; 'a<p><token>' while active)
KEYS[2] lease  zset id → lease end
ARGV[1] leaseMs
ARGV[2..] pairs: id, token (at most 500 pairs)
Returns: one integer per pair: 1 renewed, 0 lease lost
]]
--@include clock

local untilMs = nowMs() + tonumber(ARGV[1])
local ids = {}
for i = 2, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
local records = redis.call('HMGET', KEYS[1], unpack(ids))
local out, renewed = {}, {}
for n, id in ipairs(ids) do
  local rec = records[n]
  if rec and string.sub(rec, 1, 1) == 'a' and string.sub(rec, 3) == ARGV[2 * n + 1] then
    renewed[#renewed + 1] = untilMs
    renewed[#renewed + 1] = id
    out[n] = 1
  else
    out[n] = 0
  end
end
if #renewed > 0 then redis.call('ZADD', KEYS[2], 'XX', unpack(renewed)) end
return out
