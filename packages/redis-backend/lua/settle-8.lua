--[[ settle: acks, dead-letters, retries and releases many deliveries of one queue, each fenced
by its token. An ack or dead letter with a record stores it here, in the same atomic step.
KEYS: the queue's standard keys (see lib/queue.lua): msg task tok delayed lease wake dead stats
ARGV[1] base          key prefix of the queue
ARGV[2] tombstoneMs   how long an id acked without a record still counts as known to publish
ARGV[3..] operations, each `kind, id, token` then:
  A (ack)          record JSON or '', ttlMs, keyTtlMs, idempotency key or '', state or ''
  D (dead letter)  the same five, then reason, error JSON or ''
  R (retry)        at ms, the message's next raw JSON (attempt + 1, lastError)
  L (release)      at ms or '' for now
Returns: one integer per operation: 1 done, 0 lease lost (nothing changed)
]]
--@include clock
--@include queue
--@include store

local base, tombstoneMs = ARGV[1], ARGV[2]
local now = nowMs()
local out = {}
local completed, failed = 0, 0

local function unlease(id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[5], id)
end

local i = 3
while i <= #ARGV do
  local kind, id, token = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local owned = redis.call('HGET', KEYS[3], id) == token
  if kind == 'A' or kind == 'D' then
    local rec, ttl, keyTtl, key, state = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
    local reason, err = ARGV[i + 8], ARGV[i + 9]
    i = i + (kind == 'A' and 8 or 10)
    if owned then
      local raw = redis.call('HGET', KEYS[1], id)
      unlease(id)
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
      if rec ~= '' then
        storeRecord(base, id, rec, ttl, keyTtl, key, state)
      else
        redis.call('SET', base .. 'gone:' .. id, '1', 'PX', tombstoneMs)
      end
      if kind == 'D' then
        redis.call('RPUSH', KEYS[7], '{"raw":' .. cjson.encode(raw or '') .. ',"reason":' .. cjson.encode(reason) ..
          ',"error":' .. (err ~= '' and err or 'null') .. ',"at":' .. string.format('%d', now) .. '}')
        failed = failed + 1
      elseif rec == '' or state == 'succeeded' then
        completed = completed + 1
      else
        failed = failed + 1
      end
    end
  elseif kind == 'R' then
    local at, raw = tonumber(ARGV[i + 3]), ARGV[i + 4]
    i = i + 5
    if owned then
      unlease(id)
      redis.call('HSET', KEYS[1], id, raw)
      enqueue(base, id, string.sub(redis.call('HGET', KEYS[2], id), 2), at, now, true)
    end
  elseif kind == 'L' then
    local at = ARGV[i + 3] == '' and now or tonumber(ARGV[i + 3])
    i = i + 4
    if owned then
      unlease(id)
      enqueue(base, id, string.sub(redis.call('HGET', KEYS[2], id), 2), at, now, false)
    end
  else
    return redis.error_reply('settle: unknown operation ' .. tostring(kind))
  end
  out[#out + 1] = owned and 1 or 0
end
if completed > 0 then redis.call('HINCRBY', KEYS[8], 'completed', completed) end
if failed > 0 then redis.call('HINCRBY', KEYS[8], 'failed', failed) end
return out
