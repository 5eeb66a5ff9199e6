-- Shared: writes a final record and its idempotency record (results.ts rules 1 and 2).
-- base: the queue's key prefix; rec: TaskResult JSON; key: idempotency key or '';
-- success: whether rec's state is 'succeeded' (the caller knows; decoding here would cost);
-- old: the record stored under the id before, if any (fetched by the caller, batched).
-- Returns true if it wrote (the caller announces the id on `base .. 'done'`).
local function storeRecord(base, id, rec, ttl, keyTtl, key, success, old)
  -- Decoding only when a record exists keeps the common path (a fresh id) cheap.
  if old and cjson.decode(old).state == 'succeeded' then return false end
  redis.call('SET', base .. 'r:' .. id, rec, 'PX', ttl)
  if key ~= '' then
    local k = base .. 'k:' .. key
    if redis.call('HGET', k, 'ok') ~= '1' then
      -- The same string as the record, payload included: stripping it here would cost a decode and
      -- an encode per keyed store; core keeps at most 64 KiB of payload (settlement.ts), and a
      -- duplicate's own record replaces it (admission.ts).
      redis.call('HSET', k, 'rec', rec, 'ok', success and '1' or '0')
    end
    redis.call('HSETNX', k, 'tid', id)
    redis.call('DEL', base .. 'sem:key:' .. key) -- the outcome ends any claim on the key
    redis.call('PEXPIRE', k, keyTtl)
  end
  return true
end
