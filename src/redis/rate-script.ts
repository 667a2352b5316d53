/**
 * Sliding-window check-and-charge, one EVALSHA for all of a policy's limits and budgets, with the
 * in-memory store's semantics (entries, running sum, per-id counts, refunds of the newest entry).
 *
 * Per limit, two keys:
 * - a sorted set of entries: score = time charged, member = "<amount> <seq> <chargeId>" (seq makes
 *   a second charge under the same id its own entry, as in memory);
 * - a hash: `s` running sum, `f` count of entries whose amount is not an exact integer, `o` count
 *   of entries whose amount is not 1 (none, for a rate limit), `q` the sequence, and `i<chargeId>`
 *   how many live entries carry that id.
 * While f = 0 the running sum is exact (integer arithmetic in doubles); otherwise it is summed
 * again from the entries, oldest first, so float error never builds up.
 *
 * KEYS: for charge i (1-based) KEYS[2i-1] = entries, KEYS[2i] = hash.
 * ARGV: now (ms, or "redis" for Redis' TIME), chargeId, ttlSlackMs, then per charge: amount, max, windowMs.
 * Reply: {1} admitted | {1, 1} admitted, already charged (repeated) |
 *        {0, index (0-based), retryAfterMs as string or false}.
 */
const COMMON = `
local EXACT = 9007199254740992
local function fmt(x) return string.format('%.17g', x) end
local function parse(m)
  local a, id = string.match(m, '^(%S+) %d+ (.*)$')
  return tonumber(a), id
end
-- As in memory: sums of decimals are off by ulps (0.1 + 0.2 > 0.3); overshoot below 1e-12 of max fits.
local function fits(used, amount, max) return used + amount <= max + math.abs(max) * 1e-12 end
local function inexact(a) return a ~= math.floor(a) or a >= EXACT or a <= -EXACT end
local function resum(z)
  local s = 0
  for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do s = s + parse(m) end
  return s
end
-- Forgets one entry's id in the hash.
local function forgetId(h, id)
  if redis.call('HINCRBY', h, 'i' .. id, -1) <= 0 then redis.call('HDEL', h, 'i' .. id) end
end
`;

export const CHARGE_SCRIPT = `${COMMON}
local now
if ARGV[1] == 'redis' then
  -- Redis' own clock, the same for every replica (scripts replicate by effects, so TIME is allowed).
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local id = ARGV[2]
local slack = tonumber(ARGV[3])
local n = (#ARGV - 3) / 3

-- Drops entries at or before now - window (as the in-memory store does); returns the sum left.
local function live(z, h, window)
  local cutoff = fmt(now - window)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
  local sums = redis.call('HMGET', h, 's', 'f')
  local s = tonumber(sums[1]) or 0
  local f = tonumber(sums[2]) or 0
  if #gone == 0 then
    if f > 0 then return resum(z) end
    return s
  end
  local hadInexact = f > 0
  for _, m in ipairs(gone) do
    local a, gid = parse(m)
    s = s - a
    if inexact(a) then f = f - 1 end
    if a ~= 1 then redis.call('HINCRBY', h, 'o', -1) end
    forgetId(h, gid)
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

-- How long until enough of the window expires for amount to fit (false if it never can).
local function retryAfter(z, h, used, amount, max, window)
  if amount > max then return false end
  if tonumber(redis.call('HGET', h, 'o') or '0') == 0 then
    -- Every entry is 1 (a rate limit): the k-th oldest is the one to wait for, found directly, so a
    -- window far over its max (after a reload lowered it) costs no scan.
    local k = math.max(1, math.ceil(used + amount - max))
    while k > 1 and fits(used - (k - 1), amount, max) do k = k - 1 end
    while not fits(used - k, amount, max) do k = k + 1 end
    local e = redis.call('ZRANGE', z, k - 1, k - 1, 'WITHSCORES')
    if e[2] == nil then return false end
    return fmt(math.max(1, tonumber(e[2]) + window - now))
  end
  local freed = 0
  local start = 0
  -- Usually the oldest entry or two free enough: read small pages first, larger ones after.
  local size = 2
  while true do
    local page = redis.call('ZRANGE', z, start, start + size - 1, 'WITHSCORES')
    if #page == 0 then return false end
    for j = 1, #page, 2 do
      freed = freed + parse(page[j])
      if fits(used - freed, amount, max) then
        return fmt(math.max(1, tonumber(page[j + 1]) + window - now))
      end
    end
    start = start + size
    size = math.min(size * 4, 512)
  end
end

local used = {}
local already = id ~= ''
for i = 1, n do
  local h = KEYS[2 * i]
  used[i] = live(KEYS[2 * i - 1], h, tonumber(ARGV[3 * i + 3]))
  if already and redis.call('HEXISTS', h, 'i' .. id) == 0 then already = false end
end
if already then return {1, 1} end

for i = 1, n do
  local amount = tonumber(ARGV[3 * i + 1])
  local max = tonumber(ARGV[3 * i + 2])
  if not fits(used[i], amount, max) then
    return {0, i - 1, retryAfter(KEYS[2 * i - 1], KEYS[2 * i], used[i], amount, max, tonumber(ARGV[3 * i + 3]))}
  end
end

for i = 1, n do
  local z = KEYS[2 * i - 1]
  local h = KEYS[2 * i]
  local amount = tonumber(ARGV[3 * i + 1])
  local seq = redis.call('HINCRBY', h, 'q', 1)
  redis.call('ZADD', z, fmt(now), ARGV[3 * i + 1] .. ' ' .. seq .. ' ' .. id)
  redis.call('HINCRBY', h, 'i' .. id, 1)
  if amount ~= 1 then redis.call('HINCRBY', h, 'o', 1) end
  local sums = redis.call('HMGET', h, 's', 'f')
  local s = (tonumber(sums[1]) or 0) + amount
  local f = tonumber(sums[2]) or 0
  if inexact(amount) then f = f + 1 end
  if f > 0 then s = resum(z) end
  redis.call('HSET', h, 's', fmt(s), 'f', f)
  local ttl = math.ceil(tonumber(ARGV[3 * i + 3]) + slack)
  redis.call('PEXPIRE', z, ttl)
  redis.call('PEXPIRE', h, ttl)
end
return {1}
`;

/**
 * Takes back the newest entry a chargeId recorded under each key (what the charge being refunded
 * added; an older charge of the same id stays).
 * KEYS: as for CHARGE_SCRIPT. ARGV: chargeId.
 */
export const REFUND_SCRIPT = `${COMMON}
local id = ARGV[1]
for i = 1, #KEYS / 2 do
  local z = KEYS[2 * i - 1]
  local h = KEYS[2 * i]
  if redis.call('HEXISTS', h, 'i' .. id) == 1 then
    -- Newest = highest seq (insertion order, as in memory). Entries charged in the same ms sort by
    -- member text, not seq, so the whole group at the first matching score is searched.
    local start = 0
    local found, foundSeq, foundScore
    local done = false
    while not done do
      local page = redis.call('ZREVRANGE', z, start, start + 63, 'WITHSCORES')
      if #page == 0 then break end
      for j = 1, #page, 2 do
        local m = page[j]
        if found and page[j + 1] ~= foundScore then done = true; break end
        local _, mid = parse(m)
        if mid == id then
          local sq = tonumber(string.match(m, '^%S+ (%d+) '))
          if not found or sq > foundSeq then found, foundSeq, foundScore = m, sq, page[j + 1] end
        end
      end
      start = start + 64
    end
    if found then
      redis.call('ZREM', z, found)
      if redis.call('ZCARD', z) == 0 then
        redis.call('DEL', h)
      else
        forgetId(h, id)
        local sums = redis.call('HMGET', h, 's', 'f')
        local amount = parse(found)
        if amount ~= 1 then redis.call('HINCRBY', h, 'o', -1) end
        local s = (tonumber(sums[1]) or 0) - amount
        local f = tonumber(sums[2]) or 0
        local hadInexact = f > 0
        if inexact(amount) then f = f - 1 end
        if hadInexact then s = resum(z) end
        redis.call('HSET', h, 's', fmt(s), 'f', f)
      end
    end
  end
end
return 1
`;
