/**
 * Lua for RedisApprovalStore: the steps of engine/approvals/lifecycle.ts, each atomic. A request
 * is a hash `ar:<id>`: `doc` (its fixed fields as JSON, never parsed here), `status`, `expiresAt`,
 * `usesLeft`, `quorum`, `uses`, `grants` (distinct grantors) with a `g:<approver>` marker each, and
 * `decisions` (the decisions' JSON, comma-joined). Times are the gate's clock, passed in; any time
 * written is computed by the caller, so no float formatting happens in Lua.
 */

/** Marks a lapsed pending or granted request expired; the status after, and 1 when it lapsed now. */
const EXPIRE = `
local function expire_if_due(rk, st, exp, now)
  if (st == 'pending' or st == 'granted') and now >= exp then
    redis.call('HSET', rk, 'status', 'expired')
    return 'expired', 1
  end
  return st, 0
end
`;

/**
 * KEYS: binding key, index zset. ARGV: now, mode ('use' | 'look'), request key prefix, fresh id,
 * fresh doc, fresh expiresAt, quorum, uses, key ttl ms.
 * Reply: { outcome, id, expiresAt, usesLeft, expiredId }.
 */
export const OPEN_SCRIPT = `${EXPIRE}
local now = tonumber(ARGV[1])
local expired = ''
local id = redis.call('GET', KEYS[1])
if id then
  local rk = ARGV[3] .. id
  local f = redis.call('HMGET', rk, 'status', 'expiresAt', 'usesLeft')
  if f[1] then
    local exp = tonumber(f[2])
    local left = tonumber(f[3])
    local st, lapsed = expire_if_due(rk, f[1], exp, now)
    if lapsed == 1 then expired = id end
    if now < exp and (st == 'pending' or st == 'denied' or (st == 'granted' and left > 0)) then
      if st ~= 'granted' then return {st, id, f[2], '', expired} end
      if ARGV[2] ~= 'use' then return {'granted', id, f[2], tostring(left), expired} end
      left = left - 1
      if left == 0 then
        redis.call('HSET', rk, 'usesLeft', '0', 'status', 'used')
      else
        redis.call('HSET', rk, 'usesLeft', tostring(left))
      end
      return {'used', id, f[2], tostring(left), expired}
    end
  end
end
if ARGV[2] ~= 'use' then return {'none', '', '', '', expired} end
local rk = ARGV[3] .. ARGV[4]
redis.call('HSET', rk, 'doc', ARGV[5], 'status', 'pending', 'expiresAt', ARGV[6], 'usesLeft', '0',
  'quorum', ARGV[7], 'uses', ARGV[8], 'grants', '0', 'decisions', '')
redis.call('PEXPIRE', rk, ARGV[9])
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[9])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[4])
return {'created', ARGV[4], ARGV[6], '', expired}
`;

/**
 * KEYS: request key. ARGV: now, approver id, 'grant' | 'deny', decision JSON, grant expiresAt,
 * channel, id. Reply: { 'OK', hgetall } or { code, lapsedNow }.
 */
export const DECIDE_SCRIPT = `${EXPIRE}
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_FOUND', 0} end
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'quorum', 'uses')
local st, lapsed = expire_if_due(KEYS[1], f[1], tonumber(f[2]), now)
if st == 'expired' then return {'EXPIRED', lapsed} end
if st ~= 'pending' then return {'NOT_PENDING', lapsed} end
local d = redis.call('HGET', KEYS[1], 'decisions')
if d == '' then d = ARGV[4] else d = d .. ',' .. ARGV[4] end
redis.call('HSET', KEYS[1], 'decisions', d)
if ARGV[3] == 'deny' then
  redis.call('HSET', KEYS[1], 'status', 'denied')
elseif redis.call('HSETNX', KEYS[1], 'g:' .. ARGV[2], '1') == 1 then
  local n = redis.call('HINCRBY', KEYS[1], 'grants', 1)
  if n >= tonumber(f[3]) then
    redis.call('HSET', KEYS[1], 'status', 'granted', 'expiresAt', ARGV[5], 'usesLeft', f[4])
  end
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return {'OK', redis.call('HGETALL', KEYS[1])}
`;

/** KEYS: request key. ARGV: now. Reply: 1 when a use was given back, else 0. */
export const GIVE_BACK_SCRIPT = `
local f = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'usesLeft', 'uses')
if not f[1] then return 0 end
local left = tonumber(f[3])
if (f[1] ~= 'used' and f[1] ~= 'granted') or left >= tonumber(f[4]) then return 0 end
local st = 'granted'
if tonumber(ARGV[1]) >= tonumber(f[2]) then st = 'expired' end
redis.call('HSET', KEYS[1], 'usesLeft', tostring(left + 1), 'status', st)
return 1
`;

/** KEYS: request key. ARGV: now. Reply: { lapsedNow, hgetall }, or { -1 } when there is none. */
export const GET_SCRIPT = `${EXPIRE}
local f = redis.call('HMGET', KEYS[1], 'status', 'expiresAt')
if not f[1] then return {-1} end
local st, lapsed = expire_if_due(KEYS[1], f[1], tonumber(f[2]), tonumber(ARGV[1]))
return {lapsed, redis.call('HGETALL', KEYS[1])}
`;
