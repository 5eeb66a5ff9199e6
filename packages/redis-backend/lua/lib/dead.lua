-- Shared: the dead-letter list's retention (BrokerOptions.deadLetters). Entries are pushed in
-- time order, each ending in `,"at":<ms>}`, so the too-old ones are always at the head: trimming
-- reads only the entries it drops (plus one), never the whole list.
-- maxCount, maxAgeMs: numbers; now: the server clock (ms).
local function trimDead(key, now, maxCount, maxAgeMs)
  redis.call('LTRIM', key, -maxCount, -1)
  local oldest = now - maxAgeMs
  for _ = 1, 1000 do -- bounded per call; the next call carries on
    local head = redis.call('LINDEX', key, 0)
    if not head then return end
    -- Only the tail of the entry is read: a dead letter can hold a large raw message.
    local at = tonumber(string.match(string.sub(head, -24), '"at":(%d+)}$'))
    if at == nil or at >= oldest then return end
    redis.call('LPOP', key)
  end
end
