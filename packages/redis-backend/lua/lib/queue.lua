-- Shared by the scripts that take the queue's standard KEYS:
--   KEYS[1] msg (hash id → raw JSON)      KEYS[2] task (hash id → state letter .. priority digit)
--   KEYS[3] tok (hash id → fencing token) KEYS[4] delayed (zset id → due ms)
--   KEYS[5] lease (zset id → lease end)   KEYS[6] wake (list: a marker while work may be ready)
--   KEYS[7] dead (list of JSON entries)   KEYS[8] stats (hash: completed, failed)
-- The ten ready lists are `base .. 'ready:' .. priority`, in the same hash slot as the rest.
-- State letters: p pending, s scheduled, r retrying, a active (the per-task record `state()` reads).

-- Leaves one marker for blocked fetchers; each woken fetcher passes it on while work remains.
local function wake()
  if redis.call('LLEN', KEYS[6]) == 0 then redis.call('LPUSH', KEYS[6], '1') end
end

local function readyCount(base)
  local n = 0
  for p = 0, 9 do n = n + redis.call('LLEN', base .. 'ready:' .. p) end
  return n
end

-- Puts `id` on its priority's ready list (due now) or in the delayed set, recording its state.
local function enqueue(base, id, p, at, now, retrying)
  if at > now then
    local head = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    redis.call('ZADD', KEYS[4], at, id)
    redis.call('HSET', KEYS[2], id, (retrying and 'r' or 's') .. p)
    -- A new earliest due time: blocked fetchers must shorten their wait.
    if head[2] == nil or tonumber(head[2]) > at then wake() end
  else
    redis.call('RPUSH', base .. 'ready:' .. p, id)
    redis.call('HSET', KEYS[2], id, (retrying and 'r' or 'p') .. p)
    wake()
  end
end

-- Moves due delayed tasks and lapsed leases to ready (at most `limit` of each per call, so
-- one script never blocks the server for long; the next fetch carries on).
local function promote(base, now, limit)
  local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[4], id)
    local st = redis.call('HGET', KEYS[2], id)
    if st then
      local p = string.sub(st, 2)
      redis.call('RPUSH', base .. 'ready:' .. p, id)
      if string.sub(st, 1, 1) == 's' then redis.call('HSET', KEYS[2], id, 'p' .. p) end
    end
  end
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(lapsed) do
    -- Dropping the token is the fence: the crashed owner's settlements no longer match.
    redis.call('ZREM', KEYS[5], id)
    redis.call('HDEL', KEYS[3], id)
    local st = redis.call('HGET', KEYS[2], id)
    if st then
      local p = string.sub(st, 2)
      redis.call('RPUSH', base .. 'ready:' .. p, id)
      redis.call('HSET', KEYS[2], id, 'p' .. p)
    end
  end
  if #due > 0 or #lapsed > 0 then wake() end
end
