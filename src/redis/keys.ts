/**
 * Redis key construction. Every name that comes from outside (principal, action, session, policy
 * key, permit id) is encoded so that no name can reach into another's key: the encoding is
 * injective and its alphabet has no `:`, `{`, `}`, `*`, spaces or other bytes Redis treats specially
 * (hash tags, glob patterns in SCAN).
 *
 * UTF-16 code units, not UTF-8: JS strings may hold lone surrogates, which UTF-8 would collapse into
 * U+FFFD and so make two different names share a key.
 */
export function encodeKeyPart(name: string): string {
  return Buffer.from(name, 'utf16le').toString('base64url');
}

export function decodeKeyPart(encoded: string): string {
  return Buffer.from(encoded, 'base64url').toString('utf16le');
}

/** Key families. Each tag is distinct and none is a prefix of another followed by `:`. */
export const KEY_TAGS = {
  rateEntries: 'rz:',
  rateSums: 'rh:',
  session: 'ss:',
  sessionRecent: 'sr:',
  sessionInvalid: 'si:',
  principalCutoff: 'sp:',
  globalCutoff: 'sg',
  replay: 'rp:',
  anchorLatest: 'al:',
  anchorHistory: 'ah:',
  channel: 'inv',
  approvalRequest: 'ar:',
  approvalBinding: 'ak:',
  approvalIndex: 'al',
  approvalChannel: 'apc',
} as const;

export const DEFAULT_PREFIX = 'kavach:';

export function checkPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 200) {
    throw new TypeError('redis key prefix must be a non-empty string (at most 200 characters)');
  }
  if (/[*?[\]\s]/.test(prefix)) throw new TypeError('redis key prefix must not contain glob characters or spaces');
  return prefix;
}
