-- Check and commit the hits of one request that live in one slot, atomically.
-- Mirrors policy_engine/state/base.py (window math) and memory.py (decisions)
-- expression by expression: change both together (test_store_equivalence.py).
--
-- KEYS, per hit: COUNT/SUM one hash {b, c, p}; DISTINCT a meta hash {b, cs, us},
--   the current bucket's sketch and the union sketch (sorted sets scored by hash).
-- ARGV: now, admitted (1/0; d1/d0: the same, as a dry run that writes nothing), K, then 9 per hit:
--   kind (c|s|d), window, maximum, amount, member hash (decimal), attempts (1/0), enforce (1/0),
--   calendar period index and end ('' and '' for a sliding window)
--   A DISTINCT hit with an empty member hash is a read: the current estimate, never committed.
--   A calendar window's bucket is its period (computed by the caller, which knows time zones);
--   its fraction is 1 (base.CALENDAR_FRACTION: nothing of the previous period counts), its
--   reset the period's end (base.calendar_reset) and its keys expire then.
-- Returns, per hit: {used_if_committed, used_if_not, reset_if_committed, reset_if_not,
--   over, committed, bucket, added_cur, added_union}; numbers as %.17g strings.

local now = tonumber(ARGV[1])
local dry = string.sub(ARGV[2], 1, 1) == 'd'
local admitted = string.sub(ARGV[2], -1) == '1'
local K = tonumber(ARGV[3])
local TWO52 = 4503599627370496.0

local function fmt(x) return string.format('%.17g', x) end

local function usage(cur, prev, frac)
  return cur + prev * (1.0 - frac)
end

local function reset_after(cur, prev, frac, window, allowed)
  if cur + prev * (1.0 - frac) <= allowed then return 0.0 end
  if cur <= allowed then return (1.0 - (allowed - cur) / prev - frac) * window end
  if cur <= 0.0 then return (1.0 - frac) * window end
  local g = 1.0 - allowed / cur
  if g > 1.0 then g = 1.0 end
  return (1.0 - frac + g) * window
end

local function calendar_reset(used, allowed, end_at)
  if used <= allowed then return 0.0 end
  return end_at - now
end

local function sketch_estimate(size, sat, kth)
  if not sat then return size end
  return (K - 1) * TWO52 / (kth + 1)
end

local function score_at(key, rank)
  local r = redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
  return tonumber(r[2])
end

-- key == false is an empty sketch
local function sk_est(key, sat)
  local n = 0
  if key then n = redis.call('ZCARD', key) end
  if n == 0 then return sketch_estimate(0, sat, 0) end
  return sketch_estimate(n, sat, score_at(key, -1))
end

local function sk_after(key, sat, h, hs)
  local n = 0
  if key then n = redis.call('ZCARD', key) end
  if n > 0 and redis.call('ZSCORE', key, hs) then
    return sketch_estimate(n, sat, score_at(key, -1))
  end
  if n < K then
    local kth = h
    if n > 0 then kth = math.max(h, score_at(key, -1)) end
    return sketch_estimate(n + 1, sat, kth)
  end
  local kth = score_at(key, -1)
  if h > kth then return sketch_estimate(n, true, kth) end
  return sketch_estimate(n, true, math.max(h, score_at(key, -2)))
end

-- returns dropped, added
local function sk_insert(key, h, hs)
  if redis.call('ZSCORE', key, hs) then return false, false end
  local n = redis.call('ZCARD', key)
  if n < K then
    redis.call('ZADD', key, h, hs)
    return false, true
  end
  if h > score_at(key, -1) then return true, false end
  redis.call('ZADD', key, h, hs)
  redis.call('ZPOPMAX', key)
  return true, true
end

local plans = {}
local blocked = false
local ki = 1
local n = (#ARGV - 3) / 9
for i = 1, n do
  local a = 3 + (i - 1) * 9
  local p = {kind = ARGV[a + 1], w = tonumber(ARGV[a + 2]), max = tonumber(ARGV[a + 3]),
             amount = tonumber(ARGV[a + 4]), hs = ARGV[a + 5],
             attempts = ARGV[a + 6] == '1', enforce = ARGV[a + 7] == '1',
             cal = ARGV[a + 8] ~= '', cal_end = tonumber(ARGV[a + 9])}
  local w = p.w
  local b, frac, skew_frac
  if p.cal then
    b, frac, skew_frac = tonumber(ARGV[a + 8]), 1.0, 1.0
  else
    b = math.floor(now / w)
    frac, skew_frac = (now - b * w) / w, 0.0
  end
  if p.kind == 'd' then
    p.mk, p.ck, p.uk = KEYS[ki], KEYS[ki + 1], KEYS[ki + 2]
    ki = ki + 3
    p.read = p.hs == ''
    p.h = tonumber(p.hs)
    local m = redis.call('HMGET', p.mk, 'b', 'cs', 'us')
    local sb = tonumber(m[1])
    if sb and sb > b then b = sb; frac = skew_frac end  -- time went backwards: stay in the stored bucket
    local c, cs, u, us
    if not sb or sb < b - 1 then
      c, cs, u, us = false, false, false, false
    elseif sb == b then
      c, cs, u, us = p.ck, m[2] == '1', p.uk, m[3] == '1'
    else
      c, cs, u, us = false, false, p.ck, m[2] == '1'
    end
    p.sb, p.scs = sb, m[2] == '1'
    local cn = sk_est(c, cs)
    local un = sk_est(u, us)
    p.before = usage(cn, math.max(0.0, un - cn), frac)
    if p.cal then
      p.reset_before = calendar_reset(cn, p.max - 1.0, p.cal_end)
    else
      p.reset_before = reset_after(cn, math.max(0.0, un - cn), frac, w, p.max - 1.0)
    end
    if p.read then
      p.after = p.before
    else
      local ca = sk_after(c, cs, p.h, p.hs)
      local ua = sk_after(u, us, p.h, p.hs)
      p.after = usage(ca, math.max(0.0, ua - ca), frac)
      -- a dry run's reset as if committed: the sketches' estimates after the insert
      if p.cal then
        p.reset_dry = calendar_reset(ca, p.max - 1.0, p.cal_end)
      else
        p.reset_dry = reset_after(ca, math.max(0.0, ua - ca), frac, w, p.max - 1.0)
      end
    end
  else
    p.key = KEYS[ki]
    ki = ki + 1
    local m = redis.call('HMGET', p.key, 'b', 'c', 'p')
    local sb = tonumber(m[1])
    if sb and sb > b then b = sb; frac = skew_frac end
    local cur, prev
    if not sb or sb < b - 1 then
      cur, prev = 0.0, 0.0
    elseif sb == b then
      cur, prev = tonumber(m[2]), tonumber(m[3])
    else
      cur, prev = 0.0, tonumber(m[2])
    end
    p.cur, p.prev = cur, prev
    p.before = usage(cur, prev, frac)
    p.after = usage(cur + p.amount, prev, frac)
    if p.cal then
      p.reset_before = calendar_reset(cur, p.max - p.amount, p.cal_end)
    else
      p.reset_before = reset_after(cur, prev, frac, w, p.max - p.amount)
    end
  end
  p.b, p.frac = b, frac
  p.over = not p.read and p.after > p.max  -- a read asks for nothing, so it is never over (memory.py)
  if p.enforce and p.over then blocked = true end
  plans[i] = p
end

local out = {}
for i = 1, n do
  local p = plans[i]
  local commit = not p.read and (p.attempts or (admitted and not blocked))
  local reset_after_commit = p.reset_before
  local added_c, added_u = 0, 0
  if commit and dry then  -- nothing written: the answers a commit would give
    if p.kind == 'd' then
      reset_after_commit = p.reset_dry
    elseif p.cal then
      reset_after_commit = calendar_reset(p.cur + p.amount, p.max - p.amount, p.cal_end)
    else
      reset_after_commit = reset_after(p.cur + p.amount, p.prev, p.frac, p.w, p.max - p.amount)
    end
  elseif commit then
    local ttl
    if p.cal then
      ttl = math.ceil((p.cal_end - now) * 1000) + 1000
    else
      ttl = math.ceil(((p.b + 2) * p.w - now) * 1000) + 1000
    end
    if p.kind == 'd' then
      local cs, us
      if p.sb == p.b then
        cs, us = p.scs, redis.call('HGET', p.mk, 'us') == '1'
      elseif p.sb == p.b - 1 then  -- roll: the current sketch becomes the union sketch
        redis.call('DEL', p.uk)
        if redis.call('EXISTS', p.ck) == 1 then redis.call('RENAME', p.ck, p.uk) end
        cs, us = false, p.scs
      else
        redis.call('DEL', p.ck, p.uk)
        cs, us = false, false
      end
      local dropped, added = sk_insert(p.ck, p.h, p.hs)
      cs = cs or dropped
      if added then added_c = 1 end
      dropped, added = sk_insert(p.uk, p.h, p.hs)
      us = us or dropped
      if added then added_u = 1 end
      redis.call('HSET', p.mk, 'b', fmt(p.b), 'cs', cs and '1' or '0', 'us', us and '1' or '0')
      redis.call('PEXPIRE', p.mk, ttl)
      redis.call('PEXPIRE', p.ck, ttl)
      redis.call('PEXPIRE', p.uk, ttl)
      local cn = sk_est(p.ck, cs)
      if p.cal then
        reset_after_commit = calendar_reset(cn, p.max - 1.0, p.cal_end)
      else
        reset_after_commit = reset_after(cn, math.max(0.0, sk_est(p.uk, us) - cn), p.frac, p.w, p.max - 1.0)
      end
    else
      local cur = p.cur + p.amount
      redis.call('HSET', p.key, 'b', fmt(p.b), 'c', fmt(cur), 'p', fmt(p.prev))
      redis.call('PEXPIRE', p.key, ttl)
      if p.cal then
        reset_after_commit = calendar_reset(cur, p.max - p.amount, p.cal_end)
      else
        reset_after_commit = reset_after(cur, p.prev, p.frac, p.w, p.max - p.amount)
      end
    end
  end
  out[i] = {fmt(p.after), fmt(p.before), fmt(reset_after_commit), fmt(p.reset_before),
            p.over and 1 or 0, commit and 1 or 0, fmt(p.b), added_c, added_u}
end
return out
