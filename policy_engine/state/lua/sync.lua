-- Local-first limits (state/local_first.py): merge one process's batched deltas
-- into the shared state, in one slot, and return that state. Same keys and
-- layout as acquire.lua, so exact and batched processes share one truth.
-- MemoryStore.merge_counter and merge_member mirror the merge case by case.
--
-- KEYS, per op: COUNT/SUM the state hash {b, c, p}; DISTINCT meta hash {b, cs, us},
--   current sketch, union sketch (sorted sets scored by hash).
-- ARGV: K, reply ('r': the state of every op; 'q': nothing, for a process that owns
--   every key and so holds that state already), then per op: kind (c|d), bucket, ttl_ms, n, then n values:
--   COUNT/SUM: n = 1, the delta added to `bucket` (negative: a usage report's refund);
--   DISTINCT: n member hashes (decimal) inserted into `bucket`'s sketches.
--   n = 0 changes nothing: a pull of the state as it stands.
--   A delta for the bucket after the stored one rolls the state first (cur becomes
--   prev); one for the stored bucket's predecessor goes into prev (DISTINCT: the
--   union sketch only); anything older has left the window and is dropped.
--   The TTL (from the caller, who knows windows and calendars) is set when the
--   state ends up in `bucket`; 0 (a usage report's adjustment) keeps the key's TTL.
-- Returns, per op: COUNT/SUM {b, c, p}; DISTINCT {b, cs, us, {current hashes}, {union hashes}};
--   b = '' when the key holds nothing.

local K = tonumber(ARGV[1])
local reply = ARGV[2] == 'r'

local function fmt(x) return string.format('%.17g', x) end

-- mirrors acquire.lua's sk_insert: keep the K smallest hashes; returns dropped
local function sk_insert(key, h, hs)
  if redis.call('ZSCORE', key, hs) then return false end
  local n = redis.call('ZCARD', key)
  if n < K then
    redis.call('ZADD', key, h, hs)
    return false
  end
  local r = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if h > tonumber(r[2]) then return true end
  redis.call('ZADD', key, h, hs)
  redis.call('ZPOPMAX', key)
  return true
end

local out = {}
local ki = 1
local a = 3
while a <= #ARGV do
  local kind, ob, ttl, n = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local v = a + 4
  a = v + n
  if kind == 'd' then
    local mk, ck, uk = KEYS[ki], KEYS[ki + 1], KEYS[ki + 2]
    ki = ki + 3
    local m = redis.call('HMGET', mk, 'b', 'cs', 'us')
    local sb = tonumber(m[1])
    local cs, us = m[2] == '1', m[3] == '1'
    if n > 0 and not (sb and sb > ob + 1) then
      local into_cur = true
      if sb == ob + 1 then
        into_cur = false  -- the previous bucket: its members are in the union only
      elseif sb == ob - 1 then  -- roll: the current sketch becomes the union sketch
        redis.call('DEL', uk)
        if redis.call('EXISTS', ck) == 1 then redis.call('RENAME', ck, uk) end
        sb, cs, us = ob, false, cs
      elseif sb ~= ob then
        redis.call('DEL', ck, uk)
        sb, cs, us = ob, false, false
      end
      for i = v, v + n - 1 do
        local hs = ARGV[i]
        local h = tonumber(hs)
        if into_cur and sk_insert(ck, h, hs) then cs = true end
        if sk_insert(uk, h, hs) then us = true end
      end
      redis.call('HSET', mk, 'b', fmt(sb), 'cs', cs and '1' or '0', 'us', us and '1' or '0')
      if sb == ob and ttl > 0 then
        redis.call('PEXPIRE', mk, ttl)
        redis.call('PEXPIRE', ck, ttl)
        redis.call('PEXPIRE', uk, ttl)
      end
    end
    if reply then
      local b = ''
      if sb then b = fmt(sb) end
      out[#out + 1] = {b, cs and '1' or '0', us and '1' or '0',
                       redis.call('ZRANGE', ck, 0, -1), redis.call('ZRANGE', uk, 0, -1)}
    end
  else
    local key = KEYS[ki]
    ki = ki + 1
    local m = redis.call('HMGET', key, 'b', 'c', 'p')
    local sb, c, p = tonumber(m[1]), tonumber(m[2]) or 0.0, tonumber(m[3]) or 0.0
    if n > 0 and not (sb and sb > ob + 1) then
      local d = tonumber(ARGV[v])
      if sb == ob + 1 then
        p = math.max(0.0, p + d)
      elseif sb == ob then
        c = math.max(0.0, c + d)
      elseif sb == ob - 1 then
        sb, c, p = ob, math.max(0.0, d), c
      else
        sb, c, p = ob, math.max(0.0, d), 0.0
      end
      redis.call('HSET', key, 'b', fmt(sb), 'c', fmt(c), 'p', fmt(p))
      if sb == ob and ttl > 0 then redis.call('PEXPIRE', key, ttl) end
    end
    if reply then
      local b = ''
      if sb then b = fmt(sb) end
      out[#out + 1] = {b, fmt(c), fmt(p)}
    end
  end
end
return out
