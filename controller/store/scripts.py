"""The two Lua scripts of a call's hot path, run by Redis itself (EVALSHA over
the lane). Every key they touch shares the tenant's hash tag, so they hold on
Redis Cluster too; key names come from `keys`, passed in KEYS.

The counts under the tenant's limits are read by the second one only, where
they are checked and taken at once: an allowed call needs them nowhere else,
and reading them in the load as well cost Redis 35 us per call with five
limits (most of the controls' cost in the benchmark, see docs/performance.md).
"""

from controller.store.counting import PLACES_SWEEP

# The same reads as the pipeline, run by Redis itself: one command to send and
# parse instead of ten, and one consistent snapshot. Every key is in KEYS and
# shares the tenant's hash tag, so it is valid on Redis Cluster too.
LOAD_SCRIPT = """
local out = {}
if ARGV[1] ~= '' then
  out[1] = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) and 1 or 0
  -- ARGV[4] = '1': a fresh park another controller claimed first: nothing to read
  if out[1] == 0 and ARGV[4] == '1' then return out end
else
  out[1] = 1
end
out[2] = redis.call('HGETALL', KEYS[2])
out[3] = redis.call('HGETALL', KEYS[3])
out[4] = redis.call('HGETALL', KEYS[4])
out[5] = redis.call('HGETALL', KEYS[5])
out[6] = redis.call('SMEMBERS', KEYS[6])
out[7] = redis.call('LRANGE', KEYS[7], 0, -1)
out[8] = redis.call('HGETALL', KEYS[8])
out[9] = redis.call('SISMEMBER', KEYS[9], ARGV[3])
out[10] = redis.call('TTL', KEYS[10])
out[11] = redis.call('HGETALL', KEYS[11])
out[12] = redis.call('LRANGE', KEYS[12], 0, -1)

out[13] = redis.call('HGET', KEYS[13], 'reason') or ''
return out
"""

# A verdict that takes places under limits: admitted (counted, audited, intent
# written) only if every limit still has room, all in one script so that two
# calls at once cannot both take the last place. KEYS: the audit stream, the
# verdict's guard/intent key, then one key per limit. ARGV: now, the call's
# uuid, the number of limits, then per limit its kind (v velocity, a alert,
# c concurrency, b budget), max, the window (v, a) or how long the place is
# held if the call's end is never seen (c), and the bucket's seconds (v, a: a
# rate hash, see store.counting, whose Python twin is rate_count/rate_take);
# last, the entry's writes as audit.entry_commands makes them, flat: their
# number, then for each its length and its words (no JSON to encode here and
# decode there: 25 us of the controller's time per call, measured with
# cProfile).
# Returns {0, 0, count, ...}: admitted, with each limit's count before this
# call (the alert counts among them); or {i, count}: limit i was full.
ADMIT_SCRIPT = """
local PLACES_SWEEP = {sweep}
local now, n = tonumber(ARGV[1]), tonumber(ARGV[3])
local seen, oldest, clock = {0, 0}, {}, {}

-- The calls a rate hash counts now; buckets out of the window are dropped
-- first (once per bucket at most: the hash remembers its oldest, `lo`). Its
-- clock is now, or the start of its newest bucket (`hi`) when that is later:
-- a controller whose clock is behind counts and files as the one ahead did.
local function rate_count(key, span, w, i)
  local v = redis.call('HMGET', key, 'n', 'lo', 'hi')
  local hi = tonumber(v[3])
  clock[i] = hi and math.max(now, hi * w) or now
  if not v[1] then return 0 end
  local cut = math.floor((clock[i] - span) / w)
  local lo = tonumber(v[2])
  if lo and lo >= cut then
    oldest[i] = lo
    return tonumber(v[1])
  end
  local all, total, stale = redis.call('HGETALL', key), 0, {}
  for j = 1, #all, 2 do
    local b = tonumber(all[j])  -- nil for n, lo and hi
    if b then
      if b < cut then
        stale[#stale + 1] = all[j]
      else
        total = total + tonumber(all[j + 1])
        if not oldest[i] or b < oldest[i] then oldest[i] = b end
      end
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  if oldest[i] then
    redis.call('HSET', key, 'n', total, 'lo', oldest[i])
  else
    redis.call('HSET', key, 'n', 0)
    redis.call('HDEL', key, 'lo')
  end
  return total
end

-- The places a concurrency hash holds (call uuid -> when its place lapses):
-- HLEN, which counts a lapsed place too (a call whose end was never seen)
-- until one is dropped: all of them when the count reaches the limit (no call
-- is refused for a lapsed place) or a multiple of PLACES_SWEEP (memory).
local function place_count(key, most)
  local c = redis.call('HLEN', key)
  if c >= most or (c > 0 and c % PLACES_SWEEP == 0) then
    local all, stale = redis.call('HGETALL', key), {}
    for j = 1, #all, 2 do
      local lapse = tonumber(all[j + 1])  -- not a number (corrupt): dropped too
      if not lapse or lapse < now then stale[#stale + 1] = all[j] end
    end
    for j = 1, #stale, 1000 do  -- unpack's stack is bounded
      redis.call('HDEL', key, unpack(stale, j, math.min(j + 999, #stale)))
    end
    c = c - #stale
  end
  return c
end

for i = 1, n do
  local at = 4 * i
  local kind, most, span, key = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), KEYS[2 + i]
  local c = 0
  if kind == 'v' or kind == 'a' then
    c = rate_count(key, span, tonumber(ARGV[at + 3]), i)
  elseif kind == 'c' then
    c = place_count(key, most)
  else
    c = tonumber(redis.call('GET', key) or '0')
  end
  if c >= most and kind ~= 'a' then return {i, c} end  -- an alert counts, never refuses
  seen[2 + i] = c
end
for i = 1, n do
  local at = 4 * i
  local kind, span, key = ARGV[at], tonumber(ARGV[at + 2]), KEYS[2 + i]
  if kind == 'v' or kind == 'a' then
    local w = tonumber(ARGV[at + 3])
    local b = string.format('%d', math.floor(clock[i] / w))
    redis.call('HINCRBY', key, 'n', 1)
    if redis.call('HINCRBY', key, b, 1) == 1 then  -- a new bucket: the key lives a window past it
      if not oldest[i] or tonumber(b) < oldest[i] then
        redis.call('HSET', key, 'lo', b, 'hi', b)
      else
        redis.call('HSET', key, 'hi', b)
      end
      redis.call('EXPIRE', key, span + 2 * w + 60)
    end
  elseif kind == 'c' then
    redis.call('HSET', key, ARGV[2], string.format('%.3f', now + span))
    redis.call('EXPIRE', key, span + 60)
  end
end
local at = 4 + 4 * n
for _ = 1, tonumber(ARGV[at]) do
  local k = tonumber(ARGV[at + 1])
  redis.call(unpack(ARGV, at + 2, at + 1 + k))
  at = at + 1 + k
end
return seen
""".replace("{sweep}", str(PLACES_SWEEP))
