-- Shared: a queue's dead letters. `dead:at` (a zset: letter id → burial score) orders them and
-- `dead:letters` (a hash: letter id → JSON entry {"id","raw","reason","error","at"}) holds them,
-- so one letter is found, moved or removed by its id (redrive, discard) in O(log n).
-- The score is the burial time in µs-sized steps (ms * 1000), raised past the newest score when
-- needed: strictly increasing, so letters buried in the same millisecond keep their order, and
-- score / 1000 is still the burial time that retention compares (exact below 2^53: year 2255).
local function buryLetter(atKey, lettersKey, id, entry, now)
  local newest = redis.call('ZRANGE', atKey, -1, -1, 'WITHSCORES')[2]
  local score = now * 1000
  if newest and tonumber(newest) >= score then score = tonumber(newest) + 1 end
  -- A second letter of the same id (the task ran again and died again) replaces the first.
  redis.call('ZADD', atKey, string.format('%d', score), id)
  redis.call('HSET', lettersKey, id, entry)
end

local function dropLetters(atKey, lettersKey, ids)
  if #ids == 0 then return end
  redis.call('ZREM', atKey, unpack(ids))
  redis.call('HDEL', lettersKey, unpack(ids))
end

-- Retention (BrokerOptions.deadLetters): the oldest beyond maxCount, then any older than maxAgeMs.
-- At most 1,000 of each per call (the next call carries on), so no call blocks the server long.
-- maxCount, maxAgeMs: numbers; now: the server clock (ms).
local function trimDead(atKey, lettersKey, now, maxCount, maxAgeMs)
  local over = redis.call('ZCARD', atKey) - maxCount
  if over > 0 then dropLetters(atKey, lettersKey, redis.call('ZRANGE', atKey, 0, math.min(over, 1000) - 1)) end
  local oldest = string.format('%d', (now - maxAgeMs) * 1000)
  dropLetters(atKey, lettersKey, redis.call('ZRANGEBYSCORE', atKey, '-inf', '(' .. oldest, 'LIMIT', 0, 1000))
end
