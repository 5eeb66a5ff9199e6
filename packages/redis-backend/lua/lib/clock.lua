-- Shared: the clock every script uses.
-- Redis' own clock (TIME), never the caller's: leases are compared across many worker machines,
-- and with one clock a worker whose clock runs fast can never reclaim a lease that is still alive.
-- Times callers give (a message's eta, retry/release `at`) are their epoch ms compared with this
-- clock: a producer's clock skew shifts its own delays by the skew, and never touches a lease.
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
