--[[ fetch: promotes due work, then leases up to `max` ready messages, most urgent first.
KEYS: the queue's standard keys (see lib/queue.lua): msg task tok delayed lease wake dead stats
ARGV[1] base        key prefix of the queue
ARGV[2] max         most messages to lease
ARGV[3] leaseMs     lease length
ARGV[4] tokenBase   unique per call; each delivery's token is tokenBase .. '.' .. n
Returns: { now, nextDue, id1, raw1, token1, id2, ... }
  now      the server's clock (ms), so the caller can turn nextDue into a wait
  nextDue  earliest delayed due time or lease end, or -1 when there is none
]]
--@include clock
--@include queue

local base, max, leaseMs, tokenBase = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = nowMs()
promote(base, now, 1000)

local out = { now, -1 }
local n = 0
local leaseUntil = now + leaseMs
for p = 9, 0, -1 do
  if n >= max then break end
  local ids = redis.call('LPOP', base .. 'ready:' .. p, max - n)
  if ids then
    for _, id in ipairs(ids) do
      local raw = redis.call('HGET', KEYS[1], id)
      if raw then
        n = n + 1
        local token = tokenBase .. '.' .. n
        redis.call('HSET', KEYS[2], id, 'a' .. p)
        redis.call('HSET', KEYS[3], id, token)
        redis.call('ZADD', KEYS[5], leaseUntil, id)
        out[#out + 1] = id
        out[#out + 1] = raw
        out[#out + 1] = token
      end
    end
  end
end

-- Pass the baton: if work is left, the next blocked fetcher wakes; if not, nobody wakes for nothing.
if readyCount(base) > 0 then wake() else redis.call('DEL', KEYS[6]) end

local d = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
local l = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
local nextDue = -1
if d[2] then nextDue = tonumber(d[2]) end
if l[2] and (nextDue < 0 or tonumber(l[2]) < nextDue) then nextDue = tonumber(l[2]) end
out[2] = nextDue
return out
