--[[ publish: adds many messages to one queue, deduplicating by task id and idempotency key.
KEYS: the queue's standard keys (see lib/queue.lua): msg task delayed lease wake dead:at stats
ARGV[1] base        key prefix of the queue, `<prefix>:{<queue>}:`
ARGV[2] keyTtlMs    how long an idempotency key points at its first task
ARGV[3] clientNow   the caller's clock (epoch ms) when it sent the call: etas are on that clock
                    and are moved onto the server's (lib/clock.lua)
ARGV[4..] per message, 5 fields: id, raw JSON, priority (0-9), eta ms or '', idempotency key or ''
          (at most 1,000 messages per call)
Returns: flat list, 2 per message: owner task id, 1 if nothing was created (duplicate) else 0
]]
--@include clock
--@include queue

local base, keyTtl = ARGV[1], tonumber(ARGV[2])
local now = nowMs()
local shift = shiftOf(now, ARGV[3])
-- Delayed messages already due became ready before these: they go first (FIFO by ready time).
promote(base, now, 1000)

-- Which ids are known already (queued, or finished and remembered by a result or tombstone)?
-- One HMGET and one EXISTS for the whole batch; per-id checks only when something is known.
local ids, finals = {}, {}
for i = 4, #ARGV, 5 do
  ids[#ids + 1] = ARGV[i]
  finals[#finals + 1] = base .. 'r:' .. ARGV[i]
  finals[#finals + 1] = base .. 'gone:' .. ARGV[i]
end
local queued = redis.call('HMGET', KEYS[2], unpack(ids))
local anyFinal = redis.call('EXISTS', unpack(finals)) > 0

local out, seen = {}, {}
local bodies, records, ready = {}, {}, {}
for n, id in ipairs(ids) do
  local i = 4 + (n - 1) * 5
  local raw, p, eta, key = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local owner = id
  -- A known id (queued, finished, or earlier in this call) creates nothing. This also makes a
  -- publish that ioredis resends after a reconnect (first reply lost, script already run) harmless.
  if seen[id] or queued[n] or (anyFinal and redis.call('EXISTS', finals[2 * n - 1], finals[2 * n]) > 0) then
    owner = nil
  elseif key ~= '' then
    local k = base .. 'k:' .. key
    local tid = redis.call('HGET', k, 'tid')
    if tid and tid ~= '' then
      owner = tid
    else
      redis.call('HSET', k, 'tid', id)
      redis.call('PEXPIRE', k, keyTtl)
    end
  end
  out[#out + 1] = owner or id
  if owner ~= id then
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
    seen[id] = true
    bodies[#bodies + 1] = id
    bodies[#bodies + 1] = raw
    local at = eta == '' and now or tonumber(eta) + shift
    if at > now then
      enqueue(base, id, p, at, now, false)
    else
      records[#records + 1] = id
      records[#records + 1] = 'p' .. p
      ready[p] = ready[p] or {}
      table.insert(ready[p], id)
    end
  end
end
if #bodies > 0 then redis.call('HSET', KEYS[1], unpack(bodies)) end
if #records > 0 then
  redis.call('HSET', KEYS[2], unpack(records))
  for p, list in pairs(ready) do redis.call('RPUSH', base .. 'ready:' .. p, unpack(list)) end
  wake()
end
return out
