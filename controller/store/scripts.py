"""The two Lua scripts of a call's hot path, run by Redis itself (EVALSHA over
the lane). Every key they touch shares the tenant's hash tag, so they hold on
Redis Cluster too; key names come from `keys`, passed in KEYS.

The counts under the tenant's limits are read by the second one only, where
they are checked and taken at once: an allowed call needs them nowhere else,
and reading them in the load as well cost Redis 35 us per call with five
limits (most of the controls' cost in the benchmark, see the README).
"""

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
# c concurrency, b budget), max, and the window (v, a) or how long the place
# is held if the call's end is never seen (c); last, the entry's writes as
# audit.entry_commands makes them, flat: their number, then for each its
# length and its words (no JSON to encode here and decode there: 25 us of
# the controller's time per call, measured with cProfile).
# Returns {0, 0, count, ...}: admitted, with each limit's count before this
# call (the alert counts among them); or {i, count}: limit i was full.
ADMIT_SCRIPT = """
local now, n = tonumber(ARGV[1]), tonumber(ARGV[3])
local seen = {0, 0}
for i = 1, n do
  local kind, most, span, key = ARGV[1 + 3 * i], tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i]), KEYS[2 + i]
  local c = 0
  if kind == 'v' or kind == 'a' then
    c = redis.call('ZCOUNT', key, now - span, '+inf')
  elseif kind == 'c' then
    c = redis.call('ZCOUNT', key, now, '+inf')
  else
    c = tonumber(redis.call('GET', key) or '0')
  end
  if c >= most and kind ~= 'a' then return {i, c} end  -- an alert counts, never refuses
  seen[2 + i] = c
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
return seen
"""
