-- Shared by the scripts that take the queue's standard KEYS:
--   KEYS[1] msg      hash id → raw JSON
--   KEYS[2] task     hash id → the task's record: state letter, priority digit, then while active
--                    the delivery's fencing token ('p0', 's5', 'r3', 'a9<token>')
--   KEYS[3] delayed  zset id → due ms        KEYS[4] lease  zset id → lease end ms
--   KEYS[5] wake     list: a marker while work may be ready, for blocked fetchers
--   KEYS[6] dead:at  zset of dead letters by burial (their bodies: `base .. 'dead:letters'`, lib/dead.lua)
--   KEYS[7] stats    hash: completed, failed
-- The ten ready lists are `base .. 'ready:' .. priority`, and `base .. 'lapses'` (hash id → count
-- of lease lapses of the current attempt, absent when 0), in the same hash slot as the rest.
-- State letters: p pending, s scheduled, r retrying, a active (what `state()` reports).
-- Scripts batch their writes (one HSET/ZADD/RPUSH for many ids): per-call overhead inside Lua
-- is most of a small script's cost. Batches are capped by the callers well below Lua's
-- unpack() limit.

-- Leaves one marker for blocked fetchers; each woken fetcher passes it on while work remains.
local function wake()
  if redis.call('LLEN', KEYS[5]) == 0 then redis.call('LPUSH', KEYS[5], '1') end
end

local function readyCount(base)
  local n = 0
  for p = 0, 9 do n = n + redis.call('LLEN', base .. 'ready:' .. p) end
  return n
end

-- Queues one id due at `at`: on its priority's ready list now, or in the delayed set.
local function enqueue(base, id, p, at, now, retrying)
  if at > now then
    local head = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    redis.call('ZADD', KEYS[3], at, id)
    redis.call('HSET', KEYS[2], id, (retrying and 'r' or 's') .. p)
    -- A new earliest due time: blocked fetchers must shorten their wait.
    if head[2] == nil or tonumber(head[2]) > at then wake() end
  else
    redis.call('RPUSH', base .. 'ready:' .. p, id)
    redis.call('HSET', KEYS[2], id, (retrying and 'r' or 'p') .. p)
    wake()
  end
end

-- Moves due delayed tasks and lapsed leases to ready (at most `limit` of each per call, so one
-- script never blocks the server for long; the next call carries on).
local function promote(base, now, limit)
  local moved = 0
  -- Due delayed tasks join the back of their list: FIFO by ready time.
  local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
  if #ids > 0 then
    redis.call('ZREM', KEYS[3], unpack(ids))
    local records = redis.call('HMGET', KEYS[2], unpack(ids))
    for i, id in ipairs(ids) do
      local rec = records[i]
      if rec then
        local p = string.sub(rec, 2, 2)
        redis.call('RPUSH', base .. 'ready:' .. p, id)
        -- Retrying stays retrying until fetched.
        if string.sub(rec, 1, 1) ~= 'r' then redis.call('HSET', KEYS[2], id, 'p' .. p) end
      end
    end
    moved = moved + #ids
  end
  -- A lapsed lease: its consumer died, hung or was cut off. The task goes to the FRONT of its
  -- list (it was already served once; it must not wait behind the backlog again), loses its
  -- token (the fence: the old owner's settlements no longer match), and its lapse is counted
  -- (core turns repeated lapses into spent attempts). Walked backwards so the earliest lapse
  -- ends up first.
  ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, limit)
  if #ids > 0 then
    redis.call('ZREM', KEYS[4], unpack(ids))
    local records = redis.call('HMGET', KEYS[2], unpack(ids))
    for i = #ids, 1, -1 do
      local id, rec = ids[i], records[i]
      if rec then
        local p = string.sub(rec, 2, 2)
        redis.call('LPUSH', base .. 'ready:' .. p, id)
        redis.call('HSET', KEYS[2], id, 'p' .. p)
        redis.call('HINCRBY', base .. 'lapses', id, 1)
      end
    end
    moved = moved + #ids
  end
  if moved > 0 then wake() end
end
