--[[ purge: removes ready and delayed messages of the queue (Broker rule 10), a bounded number per
call; the caller calls again while it answers that more remain. Leased messages stay (they are in
neither place) and settle as usual. A removed message leaves no tombstone, so its id may be
published again, and its idempotency key is given back when it still points at this task and
holds no outcome (as unreserve-key-1.lua), so a new enqueue with the key is not a "duplicate" of
a task that will never run.
KEYS: the queue's standard keys (see lib/queue.lua): msg task delayed lease wake dead:at stats
ARGV[1] base    key prefix of the queue
ARGV[2] limit   most messages to take from each priority list and from the delayed set
Returns: { removed, more }  more is 1 when messages may remain
]]
--@include clock
--@include queue

local base, limit = ARGV[1], tonumber(ARGV[2])
-- Due delayed messages and lapsed leases become ready first: a lapsed lease is leased no more.
promote(base, nowMs(), 1000)

local ids, more = {}, 0
for p = 0, 9 do
  local taken = redis.call('LPOP', base .. 'ready:' .. p, limit)
  if taken then
    for _, id in ipairs(taken) do ids[#ids + 1] = id end
    if #taken == limit then more = 1 end
  end
end
local delayed = redis.call('ZRANGE', KEYS[3], 0, limit - 1)
if #delayed > 0 then
  redis.call('ZREM', KEYS[3], unpack(delayed))
  for _, id in ipairs(delayed) do ids[#ids + 1] = id end
  if #delayed == limit then more = 1 end
end
if #ids == 0 then return { 0, 0 } end

local raws = redis.call('HMGET', KEYS[1], unpack(ids))
local records = redis.call('HMGET', KEYS[2], unpack(ids))
local gone = {}
for n, id in ipairs(ids) do
  -- Only a message that is really here counts; a leased one ('a') is never in these places.
  if raws[n] and records[n] and string.sub(records[n], 1, 1) ~= 'a' then
    gone[#gone + 1] = id
    local ok, message = pcall(cjson.decode, raws[n])
    local key = ok and type(message) == 'table' and message.idempotencyKey
    if type(key) == 'string' then
      local k = base .. 'k:' .. key
      if redis.call('HGET', k, 'tid') == id and redis.call('HEXISTS', k, 'rec') == 0 then redis.call('HDEL', k, 'tid') end
    end
  end
end
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
  redis.call('HDEL', base .. 'lapses', unpack(gone))
end
return { #gone, more }
