--[[ peek: lists waiting messages of the queue without taking them (Broker.peek): no lease, no
token, nothing removed. Due delayed messages and lapsed leases are made ready first, as stats and
fetch do (that changes no outcome), so the ready list is exactly what fetches would take next.
KEYS: the queue's standard keys (see lib/queue.lua): msg task delayed lease wake dead:at stats
ARGV[1] base    key prefix of the queue
ARGV[2] state   'ready' or 'delayed'
ARGV[3] limit   most messages to list (1..1,000, checked by the caller)
Returns: ready:   { id1, raw1, id2, raw2, ... } in fetch order: priority 9 first, then each
                  priority's list from its head
         delayed: { id1, raw1, due1, ... } soonest due first (dueN: ms, by this server's clock)
  rawN is false (a nil reply) for an id whose body is gone (removed under us): the caller skips it.
]]
--@include clock
--@include queue

local base, state, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
promote(base, nowMs(), 1000)

local ids, dues = {}, {}
if state == 'ready' then
  for p = 9, 0, -1 do
    if #ids >= limit then break end
    for _, id in ipairs(redis.call('LRANGE', base .. 'ready:' .. p, 0, limit - #ids - 1)) do ids[#ids + 1] = id end
  end
else
  local scored = redis.call('ZRANGE', KEYS[3], 0, limit - 1, 'WITHSCORES')
  for i = 1, #scored, 2 do
    ids[#ids + 1] = scored[i]
    dues[#ids] = tonumber(scored[i + 1])
  end
end
if #ids == 0 then return {} end

local raws = redis.call('HMGET', KEYS[1], unpack(ids))
local out = {}
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = raws[i]
  if state ~= 'ready' then out[#out + 1] = dues[i] end
end
return out
