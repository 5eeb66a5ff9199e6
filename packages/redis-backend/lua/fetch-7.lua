--[[ fetch: promotes due work, then leases up to `max` ready messages, most urgent first.
KEYS: the queue's standard keys (see lib/queue.lua): msg task delayed lease wake dead stats
ARGV[1] base        key prefix of the queue
ARGV[2] max         most messages to lease (at most 1,000)
ARGV[3] leaseMs     lease length
ARGV[4] tokenBase   unique per call; the n-th delivery's token is tokenBase .. '.' .. n (the
                    caller makes the same strings, so tokens need not travel back)
Returns: { now, nextDue, remaining, id1, raw1, lapses1, id2, raw2, lapses2, ... }
  now        the server's clock (ms), so the caller can turn nextDue into a wait
  nextDue    earliest delayed due time or lease end, or -1 when there is none
  remaining  ready messages left after this call
  lapsesN    lease lapses of the message's current attempt so far (Delivery.lapses)
]]
--@include clock
--@include queue

local base, max, leaseMs, tokenBase = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = nowMs()
promote(base, now, 1000)

local ids, prios = {}, {}
for p = 9, 0, -1 do
  if #ids >= max then break end
  local taken = redis.call('LPOP', base .. 'ready:' .. p, max - #ids)
  if taken then
    for _, id in ipairs(taken) do
      ids[#ids + 1] = id
      prios[#ids] = p
    end
  end
end

local out = { now, -1, 0 }
if #ids > 0 then
  local raws = redis.call('HMGET', KEYS[1], unpack(ids))
  local lapses = redis.call('HMGET', base .. 'lapses', unpack(ids))
  local records, leases = {}, {}
  local leaseUntil = now + leaseMs
  local n = 0
  for i, id in ipairs(ids) do
    -- An id without a body was removed under us; it is simply not delivered.
    if raws[i] then
      n = n + 1
      local token = tokenBase .. '.' .. n
      records[#records + 1] = id
      records[#records + 1] = 'a' .. prios[i] .. token
      leases[#leases + 1] = leaseUntil
      leases[#leases + 1] = id
      out[#out + 1] = id
      out[#out + 1] = raws[i]
      out[#out + 1] = tonumber(lapses[i]) or 0
    end
  end
  if #records > 0 then
    redis.call('HSET', KEYS[2], unpack(records))
    redis.call('ZADD', KEYS[4], unpack(leases))
  end
end

-- Pass the baton: if work is left, the next blocked fetcher wakes; if not, nobody wakes for nothing.
-- This keeps the invariant fetchers rely on: ready work ⇒ a marker (or a fetcher about to take).
local remaining = readyCount(base)
if remaining > 0 then wake() else redis.call('DEL', KEYS[5]) end
out[3] = remaining

local d = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
local l = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
local nextDue = -1
if d[2] then nextDue = tonumber(d[2]) end
if l[2] and (nextDue < 0 or tonumber(l[2]) < nextDue) then nextDue = tonumber(l[2]) end
out[2] = nextDue
return out
