-- Shared: the clock every script uses.
-- Redis' own clock (TIME), never the caller's: leases are compared across many worker machines,
-- and with one clock a worker whose clock runs fast can never reclaim a lease that is still alive.
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Times callers give (a message's eta, retry/release `at`) are epoch ms on THEIR clock. They send
-- their clock's reading with the call, and the script moves each time onto this clock by the gap:
-- skew plus the call's one-way latency, so a skewed client neither brings a delay forward (a
-- "retry in 1 s" hot loop when it runs behind) nor pushes it back; latency only ever delays.
local function shiftOf(now, clientNow)
  return now - tonumber(clientNow)
end
