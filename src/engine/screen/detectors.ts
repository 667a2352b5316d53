/**
 * The built-in detectors. Each is documented in docs/screening.md (what it matches, its known
 * false positives); the corpora in test/engine/screen/ pin both. Every quantifier is bounded so a
 * hostile result cannot make a scan quadratic (see detector.ts).
 */
import { acceptIban, findCards } from './numbers.ts';
import { findEmails } from './email.ts';
import { isAlnum, isTokenChar, isWord, regexDetector, type Detector } from './detector.ts';

const BASE64 = (c: number): boolean => isAlnum(c) || c === 43 || c === 47; // [A-Za-z0-9+/]

const awsAccessKey = regexDetector({
  name: 'aws_access_key',
  anchors: ['AKIA', 'ASIA', 'ABIA', 'ACCA'],
  label: 'an AWS access key ID',
  // Long-term (AKIA) and temporary (ASIA) key ids, base32 after the prefix. AGPA/AIDA/AROA are
  // principal ids, not credentials.
  regexes: [/(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])/g],
  notAfter: isAlnum,
});

const awsSecretKey = regexDetector({
  name: 'aws_secret_key',
  label: 'an AWS secret access key',
  // 40 base64 characters are everywhere (hashes, ids); only ones named as an AWS secret, or
  // written right after an access key id (credential CSVs, `aws configure` echoes), count.
  // The anchors cover secret, Secret and SECRET; a name in mIxEd case is not looked for.
  anchors: ['ecret', 'ECRET', 'AKIA', 'ASIA'],
  regexes: [
    /(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)["']?[ \t]{0,5}(?:[:=]|=>)[ \t]{0,5}["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/dgi,
    /(?:AKIA|ASIA)[A-Z2-7]{16}["']?[ \t,;:|]{1,5}["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/dg,
  ],
  group: 1,
  notAfter: BASE64,
});

const githubToken = regexDetector({
  name: 'github_token',
  anchors: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'],
  label: 'a GitHub token',
  // Personal, OAuth, user-to-server, server-to-server and refresh tokens, and fine-grained PATs.
  // Their CRC32 tail is not checked: GitHub may lengthen tokens, and a miss would leak one.
  regexes: [/gh[pousr]_[A-Za-z0-9]{36,251}/g, /github_pat_[A-Za-z0-9_]{22,251}/g],
  notAfter: isWord,
  extendWhile: isWord,
});

const gitlabToken = regexDetector({
  name: 'gitlab_token',
  anchors: [
    'glpat-',
    'gldt-',
    'glrt-',
    'glcbt-',
    'glptt-',
    'glft-',
    'glimt-',
    'glagent-',
    'gloas-',
    'glsoat-',
    'glffct-',
    'glwt-',
    'GR1348941',
  ],
  label: 'a GitLab token',
  regexes: [
    /(?:glpat|gldt|glrt|glcbt|glptt|glft|glimt|glagent|gloas|glsoat|glffct|glwt)-[A-Za-z0-9_-]{20,250}(?:\.[0-9a-z]{2}\.[0-9a-z]{7,10})?/g,
    /GR1348941[A-Za-z0-9_-]{20,250}/g,
  ],
  notAfter: isWord,
  extendWhile: isTokenChar,
});

const slackToken = regexDetector({
  name: 'slack_token',
  anchors: ['xox', 'xapp-', 'hooks.slack.com'],
  label: 'a Slack token or webhook URL',
  regexes: [
    /xox(?:[abposre]|e\.xox[a-z])-[A-Za-z0-9-]{10,250}/g,
    /xapp-[0-9]-[A-Za-z0-9-]{10,250}/g,
    /https:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/-]{10,300}/g,
  ],
  notAfter: isWord,
  extendWhile: isTokenChar,
});

const stripeKey = regexDetector({
  name: 'stripe_key',
  anchors: ['k_live_', 'k_test_', 'whsec_'],
  label: 'a Stripe secret key',
  // Secret and restricted keys, live and test, and webhook signing secrets; publishable keys
  // (pk_) are public by design.
  regexes: [/(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,247}/g, /whsec_[A-Za-z0-9+/=]{24,250}/g],
  notAfter: isWord,
  extendWhile: isAlnum,
});

const openaiKey = regexDetector({
  name: 'openai_key',
  anchors: ['sk-proj-', 'sk-svcacct-', 'sk-admin-', 'T3BlbkFJ'],
  label: 'an OpenAI API key',
  regexes: [
    /sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,400}/g,
    /sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}/g, // legacy keys: "T3BlbkFJ" is base64 for "OpenAI"
  ],
  notAfter: isTokenChar,
  extendWhile: isTokenChar,
});

const anthropicKey = regexDetector({
  name: 'anthropic_key',
  anchors: ['sk-ant-'],
  label: 'an Anthropic API key',
  regexes: [/sk-ant-[a-z]{2,10}[0-9]{2}-[A-Za-z0-9_-]{32,400}/g],
  notAfter: isTokenChar,
  extendWhile: isTokenChar,
});

const googleApiKey = regexDetector({
  name: 'google_api_key',
  anchors: ['AIza', 'GOCSPX-'],
  label: 'a Google API key or OAuth client secret',
  regexes: [/AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/g, /GOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])/g],
  notAfter: isTokenChar,
});

/** A body of fewer base64 characters than this is a template ("..."), not a key. */
const MIN_KEY_BODY = 32;

const privateKey = regexDetector({
  name: 'private_key',
  anchors: ['-----BEGIN '],
  label: 'a private key',
  // The armour's label is repeated at the END line (\1). A key cut short (head -n, a truncated
  // result) has no END line: the match then runs to the end of the base64 body. Literal `\n`
  // (a key inside JSON-escaped text) is part of the body too.
  regexes: [
    /-----BEGIN ((?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY(?: BLOCK)?)-----(?:\s{0,4}(?:Proc-Type|DEK-Info|Comment|Version|Hash):[^\r\n]{0,200}){0,6}[A-Za-z0-9+/=\s\\]{0,65536}(?:-----END \1-----)?/g,
  ],
  accept(text, start, end) {
    let body = 0;
    for (let i = text.indexOf('-----', start + 11) + 5; i < end && body < MIN_KEY_BODY; i++) if (BASE64(text.charCodeAt(i))) body++;
    return body >= MIN_KEY_BODY ? trimTrailingSpace(text, start, end) : -1;
  },
});

const jwt = regexDetector({
  name: 'jwt',
  anchors: ['eyJ'],
  label: 'a JSON Web Token',
  // header.payload.signature, base64url; the header must decode to JSON naming an `alg`, which a
  // random dotted identifier never does. An unsigned token (alg none) has an empty signature.
  // The boundary check sits in the regex, right after the literal: `eyJeyJeyJ…` (a megabyte of
  // it) must fail each start at once, not after scanning 2048 characters. An escape (`\neyJ…`)
  // is a boundary too.
  regexes: [/eyJ(?<=(?:^|[^A-Za-z0-9_-]|\\[ntrbf])eyJ)[A-Za-z0-9_-]{8,2048}\.[A-Za-z0-9_-]{8,16384}\.[A-Za-z0-9_-]{0,8192}/g],
  accept(text, start, end) {
    const header = text.slice(start, text.indexOf('.', start));
    try {
      const parsed: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
      return parsed !== null && typeof parsed === 'object' && typeof (parsed as { alg?: unknown }).alg === 'string' ? end : -1;
    } catch {
      return -1;
    }
  },
});

const cardNumber: Detector = { name: 'card_number', label: 'a payment card number', find: findCards };

const iban = regexDetector({
  name: 'iban',
  label: 'a bank account number (IBAN)',
  regexes: [/[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}/g], // the longest IBAN has 34 characters
  notAfter: isAlnum,
  accept: acceptIban,
});

const email: Detector = { name: 'email', label: 'an email address', anchors: ['@'], find: findEmails };

export const BUILT_IN_DETECTORS: ReadonlyMap<string, Detector> = new Map(
  [
    awsAccessKey,
    awsSecretKey,
    githubToken,
    gitlabToken,
    slackToken,
    stripeKey,
    openaiKey,
    anthropicKey,
    googleApiKey,
    privateKey,
    jwt,
    cardNumber,
    iban,
    email,
  ].map((d) => [d.name, d]),
);

export const DETECTOR_NAMES: readonly string[] = [...BUILT_IN_DETECTORS.keys()];

// ---------------------------------------------------------------------------------------------

function trimTrailingSpace(text: string, start: number, end: number): number {
  while (end > start && /\s/.test(text[end - 1] as string)) end--;
  return end;
}
