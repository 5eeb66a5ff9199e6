--[[ settle: acks, dead-letters, retries and releases many deliveries of one queue, each fenced
by its token. An ack or dead letter with a record stores it here, in the same atomic step.
KEYS: the queue's standard keys (see lib/queue.lua): msg task delayed lease wake dead:at stats
ARGV[1] base          key prefix of the queue
ARGV[2] tombstoneMs   how long an id acked without a record still counts as known to publish
ARGV[3] ttlMs         how long the records of this call are kept ('' when none has one)
ARGV[4] keyTtlMs      how long their idempotency records are kept
ARGV[5] clientNow     the caller's clock (epoch ms) when it sent the call: the `at` times below are
                      on that clock and are moved onto the server's (lib/clock.lua)
ARGV[6] deadMaxCount  dead letters the queue keeps at most (oldest go first)
ARGV[7] deadMaxAgeMs  dead letters older than this go
ARGV[8] call          unique per call (the same when ioredis resends the call after a reconnect)
ARGV[9] memoMs        how long this call's answer is remembered under `base .. 'settled:' .. call`
ARGV[10] forget       call tokens of earlier calls of this caller whose replies arrived, separated
                      by spaces ('' when none): their memos are deleted
ARGV[11..] operations (at most 500), each `kind, id, token` then:
  S (ack, record of a success)      record JSON, idempotency key or ''
  F (ack, record of a failure)      record JSON, idempotency key or ''
  A (ack, no record)                nothing more
  D (dead letter)                   record JSON or '', idempotency key or '', state, reason, error JSON or ''
  R (retry)                         at ms, the message's next raw JSON (attempt + 1, lastError);
                                    its lapse count starts again at 0
  L (release)                       at ms or '' for now; the lapse count is kept
  (Few, short arguments per operation: every argument costs a conversion into Lua.)
Returns: one integer per operation: 1 done, 0 lease lost (nothing changed)
Memo: every call remembers its answer (one short string, PX memoMs). A call whose memo exists is a
  resend whose first execution's reply was lost: it changes nothing and answers what the first
  execution did, so an ack that took effect is not reported as a lost lease. The fence is intact:
  an operation answers 1 only if its own call settled it while its token held the lease.
]]
--@include clock
--@include queue
--@include store
--@include dead

local base, tombstoneMs, ttl, keyTtl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local forget = {}
for call in string.gmatch(ARGV[10], '%S+') do forget[#forget + 1] = base .. 'settled:' .. call end
if #forget > 0 then redis.call('DEL', unpack(forget)) end
local memoKey = base .. 'settled:' .. ARGV[8]
local memo = redis.call('GET', memoKey)
if memo then
  local again = {}
  for n = 1, #memo do again[n] = tonumber(string.sub(memo, n, n)) end
  return again
end

local now = nowMs()
local shift = shiftOf(now, ARGV[5])
local LENGTH = { S = 5, F = 5, A = 3, D = 8, R = 5, L = 4 }

local ops, ids = {}, {}
local i = 11
while i <= #ARGV do
  local len = LENGTH[ARGV[i]]
  if not len then return redis.error_reply('settle: unknown operation ' .. tostring(ARGV[i])) end
  ops[#ops + 1] = i
  ids[#ids + 1] = ARGV[i + 1]
  i = i + len
end

local records = redis.call('HMGET', KEYS[2], unpack(ids))
local out, settled = {}, {}
local finished, stored = {}, {}
local completed, failed, buried = 0, 0, 0
local fresh = {} -- retried: a new attempt, whose lapses start from 0
for n, at in ipairs(ops) do
  local kind, id, token = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local rec = records[n]
  -- Fenced: only the current lease's token settles, and only once per call.
  local owned = not settled[id] and rec and string.sub(rec, 1, 1) == 'a' and string.sub(rec, 3) == token
  out[n] = owned and 1 or 0
  if owned then
    settled[id] = true
    local p = string.sub(rec, 2, 2)
    if kind == 'R' then
      redis.call('ZREM', KEYS[4], id)
      redis.call('HSET', KEYS[1], id, ARGV[at + 4])
      fresh[#fresh + 1] = id
      enqueue(base, id, p, tonumber(ARGV[at + 3]) + shift, now, true)
    elseif kind == 'L' then
      redis.call('ZREM', KEYS[4], id)
      enqueue(base, id, p, ARGV[at + 3] == '' and now or tonumber(ARGV[at + 3]) + shift, now, false)
    else
      finished[#finished + 1] = id
      local result = kind ~= 'A' and ARGV[at + 3] or ''
      if result ~= '' then
        stored[#stored + 1] = at
      else
        redis.call('SET', base .. 'gone:' .. id, '1', 'PX', tombstoneMs)
      end
      if kind == 'D' then
        local raw = redis.call('HGET', KEYS[1], id) or ''
        local err = ARGV[at + 7]
        -- Named by the id it was stored under: the task id, or an injected raw message's own id.
        buryLetter(KEYS[6], base .. 'dead:letters', id, '{"id":' .. cjson.encode(id) .. ',"raw":' .. cjson.encode(raw) ..
          ',"reason":' .. cjson.encode(ARGV[at + 6]) .. ',"error":' .. (err ~= '' and err or 'null') .. ',"at":' .. string.format('%d', now) .. '}', now)
        failed = failed + 1
        buried = buried + 1
      elseif kind == 'F' then
        failed = failed + 1
      else
        completed = completed + 1
      end
    end
  end
end

if #finished > 0 then
  redis.call('HDEL', KEYS[1], unpack(finished))
  redis.call('HDEL', KEYS[2], unpack(finished))
  redis.call('ZREM', KEYS[4], unpack(finished))
  redis.call('HDEL', base .. 'lapses', unpack(finished))
end
if #fresh > 0 then redis.call('HDEL', base .. 'lapses', unpack(fresh)) end
if buried > 0 then trimDead(KEYS[6], base .. 'dead:letters', now, tonumber(ARGV[6]), tonumber(ARGV[7])) end
if #stored > 0 then
  local keys = {}
  for n, at in ipairs(stored) do keys[n] = base .. 'r:' .. ARGV[at + 1] end
  local olds = redis.call('MGET', unpack(keys))
  local announced = {}
  for n, at in ipairs(stored) do
    local id = ARGV[at + 1]
    local kind = ARGV[at]
    local success = kind == 'S' or (kind == 'D' and ARGV[at + 5] == 'succeeded')
    if storeRecord(base, id, ARGV[at + 3], ttl, keyTtl, ARGV[at + 4], success, olds[n]) then
      announced[#announced + 1] = id
    end
  end
  -- One message for the whole batch (ids cannot contain commas). Sharded pub/sub stays on this
  -- slot's node in a cluster, where PUBLISH would go to every node.
  if #announced > 0 then redis.call('SPUBLISH', base .. 'done', table.concat(announced, ',')) end
end
if completed > 0 then redis.call('HINCRBY', KEYS[7], 'completed', completed) end
if failed > 0 then redis.call('HINCRBY', KEYS[7], 'failed', failed) end
redis.call('SET', memoKey, table.concat(out), 'PX', ARGV[9])
return out
