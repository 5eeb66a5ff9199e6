--[[ redrive: moves dead letters back to the queue as fresh messages (Broker rule 8). Each letter's
move is this one script: it leaves the dead letters and is queued together, or not at all.
The caller read the letter and built its new message (core's `redriveMessage`: attempt 1, the
reason as lastError); here it is queued ready at once, past publish dedup: the id's stored result
(`r:<id>`) and tombstone (`gone:<id>`), which make publish call it a duplicate, are removed.
KEYS: the queue's standard keys (see lib/queue.lua): msg task delayed lease wake dead:at stats
ARGV[1] base   key prefix of the queue
ARGV[2..] per letter, 4 fields: letter id, task id (the same for a letter that parses), the new
          message JSON, priority (0-9) (at most 100 letters per call)
Returns: one code per letter: 1 queued, 0 not found (no longer a dead letter), 2 refused (a task
         with that id is queued or running now: it stays a dead letter)
]]
--@include clock
--@include queue
--@include dead

local base = ARGV[1]
local now = nowMs()
local letters = base .. 'dead:letters'
local out = {}
for i = 2, #ARGV, 4 do
  local letterId, id, raw, p = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if not redis.call('ZSCORE', KEYS[6], letterId) then
    out[#out + 1] = 0
  elseif redis.call('HEXISTS', KEYS[2], id) == 1 then
    out[#out + 1] = 2
  else
    dropLetters(KEYS[6], letters, { letterId })
    redis.call('DEL', base .. 'r:' .. id, base .. 'gone:' .. id)
    redis.call('HDEL', base .. 'lapses', id)
    redis.call('HSET', KEYS[1], id, raw)
    enqueue(base, id, p, now, now, false)
    out[#out + 1] = 1
  end
end
return out
