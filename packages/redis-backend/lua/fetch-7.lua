--[[ fetch: promotes due work, then leases up to `max` ready messages, most urgent first.
KEYS: the queue's standard keys (see lib/queue.lua): msg task delayed lease wake dead:at stats
ARGV[1] base        key prefix of the queue
ARGV[2] max         most messages to lease (at most 1,000)
ARGV[3] leaseMs     lease length
ARGV[4] tokenBase   unique per call (and the same when ioredis resends the call after a
                    reconnect); the n-th delivery's token is tokenBase .. '.' .. n (the caller makes
                    the same strings, so tokens need not travel back)
ARGV[5] forget      tokenBases of earlier calls of this caller whose replies arrived, separated by
                    spaces ('' when none): their memos are deleted
Memo: a call that leases something remembers its batch under `base .. 'fetched:' .. tokenBase`
  (a string "id1 lapses1 id2 lapses2 ...", PX leaseMs: one write per call). A call whose memo
  exists is a resend whose first execution's reply was lost: it leases nothing more and returns
  that batch again, so the tasks are not left leased to nobody (each would come back after
  leaseMs with a lapse, a spent attempt).
Returns: { now, nextDue, remaining, id1, raw1, lapses1, id2, raw2, lapses2, ... }
  now        the server's clock (ms), so the caller can turn nextDue into a wait
  nextDue    earliest delayed due time or lease end, or -1 when there is none
  remaining  ready messages left after this call
  rawN       the message JSON; false (a nil reply) on a resend for a message no longer held by
             this call's lease (settled, or its lease lapsed): the caller skips it, and the
             position still numbers the tokens of the others
  lapsesN    lease lapses of the message's current attempt so far (Delivery.lapses)
]]
--@include clock
--@include queue

local base, max, leaseMs, tokenBase = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = nowMs()
promote(base, now, 1000)

local forget = {}
for token in string.gmatch(ARGV[5] or '', '%S+') do forget[#forget + 1] = base .. 'fetched:' .. token end
if #forget > 0 then redis.call('DEL', unpack(forget)) end

local out = { now, -1, 0 }
local memoKey = base .. 'fetched:' .. tokenBase
local memo = redis.call('GET', memoKey)
if memo then
  -- A resend: the same batch, under the same tokens, for those this call still holds.
  local ids, lapses = {}, {}
  for id, n in string.gmatch(memo, '(%S+) (%S+)') do
    ids[#ids + 1] = id
    lapses[#ids] = tonumber(n)
  end
  local raws = redis.call('HMGET', KEYS[1], unpack(ids))
  local records = redis.call('HMGET', KEYS[2], unpack(ids))
  for i, id in ipairs(ids) do
    local rec = records[i]
    local held = rec and string.sub(rec, 1, 1) == 'a' and string.sub(rec, 3) == tokenBase .. '.' .. i
    out[#out + 1] = id
    out[#out + 1] = held and raws[i] or false
    out[#out + 1] = lapses[i]
  end
else
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

  if #ids > 0 then
    local raws = redis.call('HMGET', KEYS[1], unpack(ids))
    local lapses = redis.call('HMGET', base .. 'lapses', unpack(ids))
    local records, leases, remembered = {}, {}, {}
    local leaseUntil = now + leaseMs
    local n = 0
    for i, id in ipairs(ids) do
      -- An id without a body was removed under us; it is simply not delivered.
      if raws[i] then
        n = n + 1
        local token = tokenBase .. '.' .. n
        local lapsed = tonumber(lapses[i]) or 0
        records[#records + 1] = id
        records[#records + 1] = 'a' .. prios[i] .. token
        leases[#leases + 1] = leaseUntil
        leases[#leases + 1] = id
        remembered[#remembered + 1] = id .. ' ' .. lapsed
        out[#out + 1] = id
        out[#out + 1] = raws[i]
        out[#out + 1] = lapsed
      end
    end
    if #records > 0 then
      redis.call('HSET', KEYS[2], unpack(records))
      redis.call('ZADD', KEYS[4], unpack(leases))
      redis.call('SET', memoKey, table.concat(remembered, ' '), 'PX', math.max(1, leaseMs))
    end
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
