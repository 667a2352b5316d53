/**
 * Fake secrets with the right shape (and, where the format has one, the right checksum). None is
 * a real credential: each is built here from a seed, so nothing real ever sits in the repository.
 */
import { crc32 } from 'node:zlib';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const BASE64 = `${BASE62}+/`;
const BASE64URL = `${BASE62}-_`;

/** A deterministic stream of characters from `alphabet` (xorshift over the seed). */
export function chars(alphabet: string, length: number, seed = 1): string {
  let x = (seed * 2654435761) >>> 0 || 1;
  let out = '';
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out += alphabet[x % alphabet.length];
  }
  return out;
}

function base62(n: number, width: number): string {
  let out = '';
  for (let v = n; v > 0; v = Math.floor(v / 62)) out = BASE62[v % 62] + out;
  return out.padStart(width, '0');
}

export const fake = {
  awsAccessKey: (seed = 1) => `AKIA${chars(BASE32, 16, seed)}`,
  awsSecretKey: (seed = 1) => chars(BASE64, 40, seed),
  /** GitHub's format: 30 random base62 characters and their CRC32 in 6 base62 digits. */
  githubToken: (seed = 1, prefix = 'ghp') => {
    const random = chars(BASE62, 30, seed);
    return `${prefix}_${random}${base62(crc32(random), 6)}`;
  },
  githubPat: (seed = 1) => `github_pat_${chars(BASE62, 22, seed)}_${chars(BASE62, 59, seed + 1)}`,
  gitlabToken: (seed = 1) => `glpat-${chars(`${BASE62}_-`, 20, seed)}`,
  slackToken: (seed = 1) => `xoxb-${chars('0123456789', 12, seed)}-${chars('0123456789', 13, seed + 1)}-${chars(BASE62, 24, seed + 2)}`,
  slackWebhook: (seed = 1) =>
    `https://hooks.slack.com/services/T${chars(BASE32, 8, seed)}/B${chars(BASE32, 10, seed + 1)}/${chars(BASE62, 24, seed + 2)}`,
  stripeKey: (seed = 1) => `sk_live_${chars(BASE62, 99, seed)}`,
  openaiKey: (seed = 1) => `sk-proj-${chars(BASE64URL, 74, seed)}T3BlbkFJ${chars(BASE64URL, 74, seed + 1)}`,
  openaiLegacyKey: (seed = 1) => `sk-${chars(BASE62, 20, seed)}T3BlbkFJ${chars(BASE62, 20, seed + 1)}`,
  anthropicKey: (seed = 1) => `sk-ant-api03-${chars(BASE64URL, 93, seed)}AA`,
  googleApiKey: (seed = 1) => `AIza${chars(BASE64URL, 35, seed)}`,
  privateKey: (seed = 1, label = 'RSA PRIVATE KEY') => {
    const lines = Array.from({ length: 8 }, (_, i) => chars(BASE64, 64, seed + i));
    return `-----BEGIN ${label}-----\n${lines.join('\n')}\n${chars(BASE64, 20, seed + 99)}==\n-----END ${label}-----`;
  },
  jwt: (seed = 1) => {
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: `user-${seed}`, iat: 1_700_000_000 + seed })}.${chars(BASE64URL, 43, seed)}`;
  },
  /** A Luhn-valid number with a Visa prefix. */
  cardNumber: (seed = 1, prefix = '4') => withLuhn(prefix + chars('0123456789', 15 - prefix.length, seed)),
  /** A valid IBAN for `country` with a random BBAN (digits), checksum computed. */
  iban: (seed = 1, country = 'DE', length = 22) => withIbanChecksum(country, chars('0123456789', length - 4, seed)),
  email: (seed = 1) => `user.${chars('abcdefghij', 6, seed)}@example.com`,
};

/** Appends the Luhn check digit. */
export function withLuhn(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

export function withIbanChecksum(country: string, bban: string): string {
  const numeric = (bban + country + '00').replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  let remainder = 0;
  for (const digit of numeric) remainder = (remainder * 10 + Number(digit)) % 97;
  return `${country}${String(98 - remainder).padStart(2, '0')}${bban}`;
}
