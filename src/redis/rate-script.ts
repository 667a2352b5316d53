/**
 * Sliding-window check-and-charge, one EVALSHA for all of a policy's limits and budgets.
 *
 * Per limit: a sorted set of entries (score = time charged, member = "<amount> <chargeId>") and a
 * hash with the running sum `s` and the count `f` of entries whose amount is not an exact integer.
 * While f = 0 the running sum is exact (integer arithmetic in doubles); otherwise it is summed
 * again from the entries, oldest first, as the in-memory store does, so float error never builds up.
 *
 * KEYS: for charge i (1-based) KEYS[2i-1] = entries, KEYS[2i] = sums.
 * ARGV: now, chargeId, ttlSlackMs, then per charge: amount, max, windowMs.
 * Reply: {1} admitted | {0, index (0-based), retryAfterMs as string or false}.
 */
export const CHARGE_SCRIPT = `
local now = tonumber(ARGV[1])
local id = ARGV[2]
local slack = tonumber(ARGV[3])
local n = (#ARGV - 3) / 3
local EXACT = 9007199254740992

local function fmt(x) return string.format('%.17g', x) end
local function amountOf(m) return tonumber(string.match(m, '^([^ ]+) ')) end
local function inexact(a) return a ~= math.floor(a) or a >= EXACT or a <= -EXACT end

local function resum(z)
  local s = 0
  for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do s = s + amountOf(m) end
  return s
end

-- Drops entries at or before now - window (as the in-memory store does); returns the sum left.
local function live(z, h, window)
  local cutoff = fmt(now - window)
  local sums = redis.call('HMGET', h, 's', 'f')
  local s = tonumber(sums[1]) or 0
  local f = tonumber(sums[2]) or 0
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
  if #gone == 0 then
    if f > 0 then return resum(z) end
    return s
  end
  local hadInexact = f > 0
  for _, m in ipairs(gone) do
    local a = amountOf(m)
    s = s - a
    if inexact(a) then f = f - 1 end
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff)
  if redis.call('ZCARD', z) == 0 then
    redis.call('DEL', h)
    return 0
  end
  if hadInexact then s = resum(z) end
  redis.call('HSET', h, 's', fmt(s), 'f', f)
  return s
end

-- How long until enough of the window expires for amount to fit (nil if it never can).
local function retryAfter(z, used, amount, max, window)
  if amount > max then return false end
  local freed = 0
  local start = 0
  while true do
    local page = redis.call('ZRANGE', z, start, start + 63, 'WITHSCORES')
    if #page == 0 then return false end
    for j = 1, #page, 2 do
      freed = freed + amountOf(page[j])
      if used - freed + amount <= max then
        return fmt(math.max(1, tonumber(page[j + 1]) + window - now))
      end
    end
    start = start + 64
  end
end

local used = {}
local already = id ~= ''
for i = 1, n do
  local z = KEYS[2 * i - 1]
  used[i] = live(z, KEYS[2 * i], tonumber(ARGV[3 * i + 3]))
  if already and not redis.call('ZSCORE', z, ARGV[3 * i + 1] .. ' ' .. id) then already = false end
end
if already then return {1} end

for i = 1, n do
  local amount = tonumber(ARGV[3 * i + 1])
  local max = tonumber(ARGV[3 * i + 2])
  if used[i] + amount > max then
    return {0, i - 1, retryAfter(KEYS[2 * i - 1], used[i], amount, max, tonumber(ARGV[3 * i + 3]))}
  end
end

for i = 1, n do
  local z = KEYS[2 * i - 1]
  local h = KEYS[2 * i]
  local amount = tonumber(ARGV[3 * i + 1])
  -- NX: a call already recorded under this key (a retry after a shorter window expired) counts once.
  if redis.call('ZADD', z, 'NX', ARGV[1], ARGV[3 * i + 1] .. ' ' .. id) == 1 then
    local sums = redis.call('HMGET', h, 's', 'f')
    local s = (tonumber(sums[1]) or 0) + amount
    local f = tonumber(sums[2]) or 0
    if inexact(amount) then f = f + 1 end
    if f > 0 then s = resum(z) end
    redis.call('HSET', h, 's', fmt(s), 'f', f)
  end
  local ttl = math.ceil(tonumber(ARGV[3 * i + 3]) + slack)
  redis.call('PEXPIRE', z, ttl)
  redis.call('PEXPIRE', h, ttl)
end
return {1}
`;

/**
 * Takes back what a chargeId recorded.
 * KEYS: as for CHARGE_SCRIPT. ARGV: chargeId, then per charge: amount.
 */
export const REFUND_SCRIPT = `
local id = ARGV[1]
local EXACT = 9007199254740992
local function fmt(x) return string.format('%.17g', x) end
local function amountOf(m) return tonumber(string.match(m, '^([^ ]+) ')) end
local function inexact(a) return a ~= math.floor(a) or a >= EXACT or a <= -EXACT end
for i = 1, #ARGV - 1 do
  local z = KEYS[2 * i - 1]
  local h = KEYS[2 * i]
  local amount = tonumber(ARGV[i + 1])
  if redis.call('ZREM', z, ARGV[i + 1] .. ' ' .. id) == 1 then
    if redis.call('ZCARD', z) == 0 then
      redis.call('DEL', h)
    else
      local sums = redis.call('HMGET', h, 's', 'f')
      local s = (tonumber(sums[1]) or 0) - amount
      local f = tonumber(sums[2]) or 0
      local hadInexact = f > 0
      if inexact(amount) then f = f - 1 end
      if hadInexact then
        s = 0
        for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do s = s + amountOf(m) end
      end
      redis.call('HSET', h, 's', fmt(s), 'f', f)
    end
  end
end
return 1
`;
