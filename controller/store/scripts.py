"""The two Lua scripts of a call's hot path, run by Redis itself (EVALSHA over
the lane). Every key they touch shares the tenant's hash tag, so they hold on
Redis Cluster too; key names come from `keys` (passed in KEYS and, for the
counts whose names depend on the limits, as prefixes in ARGV).
"""

# The same reads as the pipeline, run by Redis itself: one command to send and
# parse instead of ten, and one consistent snapshot. Every key is in KEYS and
# shares the tenant's hash tag, so it is valid on Redis Cluster too.
LOAD_SCRIPT = """
local out = {}
if ARGV[1] ~= '' then
  out[1] = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) and 1 or 0
  -- ARGV[9] = '1': a fresh park another controller claimed first: nothing to read
  if out[1] == 0 and ARGV[9] == '1' then return out end
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

-- The counts of every limit, for the tenant and for this call's possible
-- subjects (ARGV[10..]); keys under the tenant's hash tag (prefixes ARGV[4],
-- ARGV[6], ARGV[7]); ARGV[5] now, ARGV[8] the tenant's day.
local counts, subjects, now = {}, {}, tonumber(ARGV[5])
for i = 10, #ARGV do subjects[#subjects + 1] = ARGV[i] end
for _, item in ipairs(out[12]) do
  local ok, lim = pcall(cjson.decode, item)
  if ok and type(lim) == 'table' and lim.name and lim.kind ~= 'duration' then
    local whose = subjects
    if lim.scope == 'tenant' then whose = {'tenant'} end
    for _, subject in ipairs(whose) do
      local n = 0
      if lim.kind == 'velocity' or lim.kind == 'alert' then
        n = redis.call('ZCOUNT', ARGV[4] .. lim.name .. ':' .. subject, now - tonumber(lim.window), '+inf')
      elseif lim.kind == 'concurrency' then
        n = redis.call('ZCOUNT', ARGV[6] .. lim.name .. ':' .. subject, now, '+inf')
      elseif lim.kind == 'budget' then
        n = tonumber(redis.call('GET', ARGV[7] .. lim.name .. ':' .. subject .. ':' .. ARGV[8]) or '0')
      end
      counts[#counts + 1] = lim.name .. '|' .. subject
      counts[#counts + 1] = n
    end
  end
end
out[13] = counts
out[14] = redis.call('HGET', KEYS[13], 'reason') or ''
return out
"""

# A verdict that takes places under limits: admitted (counted, audited, intent
# written) only if every limit still has room, all in one script so that two
# calls at once cannot both take the last place. KEYS: the audit stream, the
# verdict's guard/intent key, then one key per limit. ARGV: now, the call's
# uuid, the number of limits, then per limit its kind (v velocity, a alert,
# c concurrency, b budget), max, and the window (v, a) or how long the place
# is held if the call's end is never seen (c); last, the entry's writes as
# audit.entry_commands makes them, flat: their number, then for each its
# length and its words (no JSON to encode here and decode there: 25 us of
# the controller's time per call, measured with cProfile).
ADMIT_SCRIPT = """
local now, n = tonumber(ARGV[1]), tonumber(ARGV[3])
for i = 1, n do
  local kind, most, span, key = ARGV[1 + 3 * i], tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i]), KEYS[2 + i]
  local c = 0
  if kind == 'a' then
    c = -1  -- an alert counts, never refuses
  elseif kind == 'v' then
    c = redis.call('ZCOUNT', key, now - span, '+inf')
  elseif kind == 'c' then
    c = redis.call('ZCOUNT', key, now, '+inf')
  else
    c = tonumber(redis.call('GET', key) or '0')
  end
  if c >= most then return {i, c} end
end
for i = 1, n do
  local kind, span, key = ARGV[1 + 3 * i], tonumber(ARGV[3 + 3 * i]), KEYS[2 + i]
  if kind == 'v' or kind == 'a' then
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - span))
    redis.call('EXPIRE', key, span + 60)
  elseif kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. now)
    redis.call('ZADD', key, now + span, ARGV[2])
    redis.call('EXPIRE', key, span + 60)
  end
end
local at = 4 + 3 * n
for _ = 1, tonumber(ARGV[at]) do
  local k = tonumber(ARGV[at + 1])
  redis.call(unpack(ARGV, at + 2, at + 1 + k))
  at = at + 1 + k
end
return {0, 0}
"""
