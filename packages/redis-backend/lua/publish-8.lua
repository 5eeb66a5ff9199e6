--[[ publish: adds many messages to one queue, deduplicating by task id and idempotency key.
KEYS: the queue's standard keys (see lib/queue.lua): msg task tok delayed lease wake dead stats
ARGV[1] base        key prefix of the queue, `<prefix>:{<queue>}:`
ARGV[2] keyTtlMs    how long an idempotency key points at its first task
ARGV[3..] per message, 5 fields: id, raw JSON, priority (0-9), eta ms or '', idempotency key or ''
Returns: flat list, 2 per message: owner task id, 1 if nothing was created (duplicate) else 0
]]
--@include clock
--@include queue

local base, keyTtl = ARGV[1], tonumber(ARGV[2])
local now = nowMs()
local out = {}
for i = 3, #ARGV, 5 do
  local id, raw, p, eta, key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  -- A known id creates nothing: this also makes a publish that ioredis resends after a reconnect
  -- (the first reply lost, the script already run) harmless. It reports `duplicate` then.
  if redis.call('HEXISTS', KEYS[1], id) == 1 or redis.call('EXISTS', base .. 'r:' .. id, base .. 'gone:' .. id) > 0 then
    out[#out + 1] = id
    out[#out + 1] = 1
  else
    local owner = id
    if key ~= '' then
      local k = base .. 'k:' .. key
      local tid = redis.call('HGET', k, 'tid')
      if tid and tid ~= '' then
        owner = tid
      else
        redis.call('HSET', k, 'tid', id)
        redis.call('PEXPIRE', k, keyTtl)
      end
    end
    out[#out + 1] = owner
    if owner ~= id then
      out[#out + 1] = 1
    else
      redis.call('HSET', KEYS[1], id, raw)
      enqueue(base, id, p, eta == '' and now or tonumber(eta), now, false)
      out[#out + 1] = 0
    end
  end
end
return out
