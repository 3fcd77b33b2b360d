-- Refund or reconcile charges made by acquire.lua, in one slot. Mirrors
-- MemoryStore._adjust: a delta goes into the bucket that was charged, if the
-- window still holds it; a DISTINCT refund removes the member it added.
--
-- KEYS, per op: COUNT/SUM the state hash; DISTINCT meta hash, current sketch, union sketch.
-- ARGV, 6 per op: kind (c|s|d), bucket, delta, member hash, remove_from_cur (1/0), remove_from_union (1/0)

local ki = 1
local n = #ARGV / 6
for i = 1, n do
  local a = (i - 1) * 6
  local kind, bucket = ARGV[a + 1], tonumber(ARGV[a + 2])
  if kind == 'd' then
    local mk, ck, uk = KEYS[ki], KEYS[ki + 1], KEYS[ki + 2]
    ki = ki + 3
    local sb = tonumber(redis.call('HGET', mk, 'b'))
    local hs = ARGV[a + 4]
    if sb == bucket then
      if ARGV[a + 5] == '1' then redis.call('ZREM', ck, hs) end
      if ARGV[a + 6] == '1' then redis.call('ZREM', uk, hs) end
    elseif sb == bucket + 1 and ARGV[a + 5] == '1' then
      redis.call('ZREM', uk, hs)
    end
  else
    local key = KEYS[ki]
    ki = ki + 1
    local delta = tonumber(ARGV[a + 3])
    local m = redis.call('HMGET', key, 'b', 'c', 'p')
    local sb = tonumber(m[1])
    if sb == bucket then
      redis.call('HSET', key, 'c', string.format('%.17g', math.max(0.0, tonumber(m[2]) + delta)))
    elseif sb == bucket + 1 then
      redis.call('HSET', key, 'p', string.format('%.17g', math.max(0.0, tonumber(m[3]) + delta)))
    end
  end
end
return n
