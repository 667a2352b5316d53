/**
 * Session observation, the in-memory SessionStore's semantics in one EVALSHA.
 *
 * KEYS: 1 invalid-session marker, 2 session hash, 3 recent-call list, 4 principal cutoff, 5 global cutoff.
 * A call by another principal than the session's is answered with the session's state, unrecorded.
 * ARGV: now, behaviourWindowMs, idleTtlMs, ttlSlackMs, maxRecent, principalId, ip, device, geo
 *       (ip and device are "-" when absent, "+<value>" when present; geo is "" or JSON).
 * Reply: {1, reason} invalid | {0, principal, startedAt, ip|nil, device|nil, geo|nil, count, recentCalls}.
 */
export const OBSERVE_SCRIPT = `
local now = tonumber(ARGV[1])
local since = now - tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local ttl = math.ceil(idle + tonumber(ARGV[4]))
local maxRecent = tonumber(ARGV[5])

local bad = redis.call('GET', KEYS[1])
if bad then return {1, bad} end

local s = redis.call('HMGET', KEYS[2], 'p', 't', 'l')
local exists = s[1] ~= false
if exists and now - tonumber(s[3]) > idle then
  redis.call('DEL', KEYS[2], KEYS[3])
  exists = false
end
local startedAt = now
if exists then startedAt = tonumber(s[2]) end

for k = 4, 5 do
  local cut = redis.call('HMGET', KEYS[k], 'at', 'reason')
  if cut[1] and startedAt <= tonumber(cut[1]) then return {1, cut[2]} end
end

if not exists then
  local fields = {'p', ARGV[6], 't', ARGV[1], 'c', 0}
  if string.sub(ARGV[7], 1, 1) == '+' then table.insert(fields, 'oi'); table.insert(fields, string.sub(ARGV[7], 2)) end
  if string.sub(ARGV[8], 1, 1) == '+' then table.insert(fields, 'od'); table.insert(fields, string.sub(ARGV[8], 2)) end
  if ARGV[9] ~= '' then table.insert(fields, 'og'); table.insert(fields, ARGV[9]) end
  redis.call('HSET', KEYS[2], unpack(fields))
end
-- Another principal naming this session is refused by the gate: its call is not recorded
-- (it must not push the owner's session into drift or its action cap).
local owner = redis.call('HMGET', KEYS[2], 'p', 't', 'oi', 'od', 'og', 'c', 'r')
if owner[1] ~= ARGV[6] then
  return {0, owner[1], owner[2], owner[3], owner[4], owner[5], tonumber(owner[6]), tonumber(owner[7] or '0')}
end

local count = redis.call('HINCRBY', KEYS[2], 'c', 1)
local len = redis.call('LLEN', KEYS[3])
local drop = 0
while drop < len do
  local t = tonumber(redis.call('LINDEX', KEYS[3], drop))
  if t > since then break end
  drop = drop + 1
end
if len - drop >= maxRecent then drop = len - maxRecent + 1 end
if drop > 0 then redis.call('LTRIM', KEYS[3], drop, -1) end
local recent = redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[2], 'l', ARGV[1], 'r', recent)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return {0, owner[1], owner[2], owner[3], owner[4], owner[5], count, recent}
`;

/**
 * Remembers an invalidation.
 * session: KEYS 1 marker, 2 session hash, 3 recent list; ARGV 'session', reason, at, ttlMs.
 * principal / global: KEYS 1 cutoff hash; ARGV kind, reason, at, ttlMs (0 = keep).
 * A cutoff only moves forward: a late, older message from another replica must not shorten it.
 */
export const INVALIDATE_SCRIPT = `
local kind = ARGV[1]
if kind == 'session' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
  redis.call('DEL', KEYS[2], KEYS[3])
  return 1
end
local at = tonumber(ARGV[3])
local prev = redis.call('HGET', KEYS[1], 'at')
if prev and tonumber(prev) > at then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[3], 'reason', ARGV[2])
return 1
`;
