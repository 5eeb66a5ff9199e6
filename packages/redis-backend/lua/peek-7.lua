--[[ peek: lists waiting messages of the queue without taking them (Broker.peek): no lease, no
token, nothing removed. Due delayed messages and lapsed leases are made ready first, as stats and
fetch do (that changes no outcome), so the ready list is exactly what fetches would take next.
KEYS: the queue's standard keys (see lib/queue.lua): msg task delayed lease wake dead:at stats
ARGV[1] base    key prefix of the queue
ARGV[2] state   'ready' or 'delayed'
ARGV[3] limit   most messages to list (1..500, checked by the caller)
ARGV[4] budget  bytes of bodies a reply may hold: no body is read once the reply holds this many
                (the first always is), so big messages cannot make the script (which blocks
                Redis) copy gigabytes; fewer than `limit` then come back
Returns: ready:   { id1, raw1, id2, raw2, ... } in fetch order: priority 9 first, then each
                  priority's list from its head
         delayed: { id1, raw1, due1, ... } soonest due first (dueN: ms, by this server's clock)
  rawN is false (a nil reply) for an id whose body is gone (removed under us): the caller skips it.
]]
--@include clock
--@include queue

local base, state, limit, budget = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
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

-- One body at a time (not one HMGET of them all), to stop at the budget before reading the rest.
local out, bytes = {}, 0
for i, id in ipairs(ids) do
  if bytes >= budget then break end
  local raw = redis.call('HGET', KEYS[1], id)
  if raw then bytes = bytes + #raw end
  out[#out + 1] = id
  out[#out + 1] = raw
  if state ~= 'ready' then out[#out + 1] = dues[i] end
end
return out
