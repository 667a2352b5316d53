/**
 * Positive and negative corpora per detector, and look-alikes no detector may match. Every secret
 * is a fake built in fakes.ts; card and IBAN examples are the public test numbers of the card
 * networks and of the IBAN registry's documentation.
 */
import { chars, fake, withIbanChecksum, withLuhn } from './fakes.ts';

/** A text and the exact secrets in it a detector must find (in order). */
export type Positive = { text: string; secrets: string[] };

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const secret40 = fake.awsSecretKey(3);
const pem = fake.privateKey(5);
const luhnBad = (valid: string) => valid.slice(0, -1) + String((Number(valid.slice(-1)) + 1) % 10);
const jwtNone = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"42"}').toString('base64url')}.`;

export const CORPUS: Record<string, { positive: Positive[]; negative: string[] }> = {
  aws_access_key: {
    positive: [
      { text: `export AWS_ACCESS_KEY_ID=${fake.awsAccessKey(1)}`, secrets: [fake.awsAccessKey(1)] },
      {
        text: `{"AccessKeyId":"ASIA${chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16, 9)}"}`,
        secrets: [`ASIA${chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16, 9)}`],
      },
      { text: fake.awsAccessKey(2), secrets: [fake.awsAccessKey(2)] },
    ],
    negative: [
      `AKIA${'ABCDEFGHIJKLMNO'}`, // 15 after the prefix
      `${fake.awsAccessKey(1)}Q`, // runs on
      `x${fake.awsAccessKey(1)}`, // inside a longer token
      fake.awsAccessKey(1).toLowerCase(),
      'AIDAJQABLZS4A3QDU576Q is a user id, AROAJQABLZS4A3QDU576Q a role id',
    ],
  },
  aws_secret_key: {
    positive: [
      { text: `aws_secret_access_key = ${secret40}\n`, secrets: [secret40] },
      { text: `{"SecretAccessKey": "${secret40}"}`, secrets: [secret40] },
      { text: `AWS_SECRET_ACCESS_KEY=${secret40}`, secrets: [secret40] },
      { text: `alice,${fake.awsAccessKey(4)},${secret40}`, secrets: [secret40] },
    ],
    negative: [
      secret40, // 40 base64 characters alone are a hash, an id, anything
      `aws_secret_access_key = ${secret40.slice(0, 39)}`,
      `aws_secret_access_key = ${secret40}A`,
      'commit 3f786850e387550fdab836ed7e6dc881de23001b',
      'secret_key_base = "see the vault"',
    ],
  },
  github_token: {
    positive: [
      { text: `GITHUB_TOKEN=${fake.githubToken(1)}`, secrets: [fake.githubToken(1)] },
      {
        text: `oauth ${fake.githubToken(2, 'gho')} and app ${fake.githubToken(3, 'ghs')}`,
        secrets: [fake.githubToken(2, 'gho'), fake.githubToken(3, 'ghs')],
      },
      { text: `"token": "${fake.githubPat(4)}"`, secrets: [fake.githubPat(4)] },
    ],
    negative: [
      `ghp_${chars(B64.slice(0, 62), 35, 1)}`, // one short
      `xghp_${chars(B64.slice(0, 62), 36, 1)}`,
      `ghx_${chars(B64.slice(0, 62), 36, 1)}`,
      'see github_pat_ in the docs; github_pat_short',
    ],
  },
  gitlab_token: {
    positive: [
      { text: `PRIVATE-TOKEN: ${fake.gitlabToken(1)}`, secrets: [fake.gitlabToken(1)] },
      { text: `deploy gldt-${chars(B64.slice(0, 62), 24, 2)} done`, secrets: [`gldt-${chars(B64.slice(0, 62), 24, 2)}`] },
    ],
    negative: ['glpat-tooShort12345', 'glpat_abcdefghijklmnopqrstu', 'xglpat-abcdefghijklmnopqrstu'],
  },
  slack_token: {
    positive: [
      { text: `SLACK_BOT_TOKEN=${fake.slackToken(1)}`, secrets: [fake.slackToken(1)] },
      { text: `post to ${fake.slackWebhook(2)} now`, secrets: [fake.slackWebhook(2)] },
    ],
    negative: ['xoxb-123', 'https://hooks.slack.com/', 'xoxz-1234567890-abcdef', 'see https://api.slack.com/authentication/token-types'],
  },
  stripe_key: {
    positive: [
      { text: `Stripe.apiKey = "${fake.stripeKey(1)}";`, secrets: [fake.stripeKey(1)] },
      { text: `rk_test_${chars(B64.slice(0, 62), 24, 2)}`, secrets: [`rk_test_${chars(B64.slice(0, 62), 24, 2)}`] },
      { text: `STRIPE_WEBHOOK_SECRET=whsec_${chars(B64.slice(0, 62), 32, 3)}`, secrets: [`whsec_${chars(B64.slice(0, 62), 32, 3)}`] },
    ],
    negative: [`pk_live_${chars(B64.slice(0, 62), 24, 4)}`, 'sk_live_short', `ask_live_${chars(B64.slice(0, 62), 24, 4)}`],
  },
  openai_key: {
    positive: [
      { text: `OPENAI_API_KEY=${fake.openaiKey(1)}`, secrets: [fake.openaiKey(1)] },
      { text: `key: ${fake.openaiLegacyKey(2)}.`, secrets: [fake.openaiLegacyKey(2)] },
    ],
    negative: [
      `sk-${chars(B64.slice(0, 62), 48, 3)}`, // no OpenAI marker, no project prefix
      `task-proj-${chars(B64.slice(0, 62), 40, 3)}`,
      fake.anthropicKey(3), // someone else's key
      'sk-proj-short',
    ],
  },
  anthropic_key: {
    positive: [
      { text: `ANTHROPIC_API_KEY=${fake.anthropicKey(1)}`, secrets: [fake.anthropicKey(1)] },
      { text: `x-api-key: ${fake.anthropicKey(2)}\n`, secrets: [fake.anthropicKey(2)] },
    ],
    negative: ['sk-ant-api03-short', 'sk-ant-', `ask-ant-api03-${chars(B64.slice(0, 62), 40, 2)}`],
  },
  google_api_key: {
    positive: [
      { text: `https://maps.googleapis.com/maps/api/js?key=${fake.googleApiKey(1)}&v=3`, secrets: [fake.googleApiKey(1)] },
      { text: `"client_secret": "GOCSPX-${chars(B64.slice(0, 62), 28, 2)}"`, secrets: [`GOCSPX-${chars(B64.slice(0, 62), 28, 2)}`] },
    ],
    negative: [`AIza${chars(B64.slice(0, 62), 34, 3)} `, `AIza${chars(B64.slice(0, 62), 36, 3)}`, `xAIza${chars(B64.slice(0, 62), 35, 3)}`],
  },
  private_key: {
    positive: [
      { text: `key file:\n${pem}\n`, secrets: [pem] },
      { text: fake.privateKey(6, 'OPENSSH PRIVATE KEY'), secrets: [fake.privateKey(6, 'OPENSSH PRIVATE KEY')] },
      { text: fake.privateKey(7, 'PRIVATE KEY'), secrets: [fake.privateKey(7, 'PRIVATE KEY')] },
      { text: fake.privateKey(8, 'ENCRYPTED PRIVATE KEY'), secrets: [fake.privateKey(8, 'ENCRYPTED PRIVATE KEY')] },
      { text: fake.privateKey(9, 'PGP PRIVATE KEY BLOCK'), secrets: [fake.privateKey(9, 'PGP PRIVATE KEY BLOCK')] },
      // head -n 4 of a key file: no END line
      { text: pem.split('\n').slice(0, 4).join('\n'), secrets: [pem.split('\n').slice(0, 4).join('\n')] },
      // inside JSON-escaped text
      { text: `{\\"key\\": \\"${pem.replace(/\n/g, '\\n')}\\"}`, secrets: [pem.replace(/\n/g, '\\n')] },
    ],
    negative: [
      `-----BEGIN PUBLIC KEY-----\n${chars(B64, 64, 1)}\n-----END PUBLIC KEY-----`,
      `-----BEGIN CERTIFICATE-----\n${chars(B64, 64, 2)}\n-----END CERTIFICATE-----`,
      '-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----',
      `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${chars(B64, 43, 3)} alice@laptop`.replace('alice@laptop', 'alice-laptop'),
    ],
  },
  jwt: {
    positive: [
      { text: `Authorization: Bearer ${fake.jwt(1)}`, secrets: [fake.jwt(1)] },
      { text: `{"id_token":"${fake.jwt(2)}"}`, secrets: [fake.jwt(2)] },
      { text: `unsigned ${jwtNone} here`, secrets: [jwtNone] },
    ],
    negative: [
      'eyJhbGciOiJIUzI1NiJ9 alone',
      `eyJ${chars(B64.slice(0, 62), 20, 1)}.${chars(B64.slice(0, 62), 20, 2)}.${chars(B64.slice(0, 62), 20, 3)}`, // header is not JSON
      `data:application/json;base64,${Buffer.from('{"alg":"HS256","a":1}').toString('base64')}`,
    ],
  },
  card_number: {
    positive: [
      { text: 'card 4111 1111 1111 1111 exp 12/29', secrets: ['4111 1111 1111 1111'] },
      { text: 'mc: 5555-5555-5555-4444.', secrets: ['5555-5555-5555-4444'] },
      { text: 'amex 378282246310005 and 3782 822463 10005', secrets: ['378282246310005', '3782 822463 10005'] },
      { text: `{"pan":"${fake.cardNumber(5)}"}`, secrets: [fake.cardNumber(5)] },
      { text: 'discover 6011111111111117, year 2024', secrets: ['6011111111111117'] },
      { text: '4111 1111 1111 1111 2024', secrets: ['4111 1111 1111 1111'] },
      { text: 'cards:4111111111111111,5555555555554444', secrets: ['4111111111111111', '5555555555554444'] },
    ],
    negative: [
      luhnBad('4111111111111111'),
      'ts 1733530000000 and 1733530000000123',
      '41111111-1111-1111-1111-111111111111',
      'call +91 98765 43210',
      'p = 0.4111111111111111',
      '4111 11 1111 1111 11',
      '4111-1111 1111-1111',
      `${withLuhn('411111111111111')}7`, // a 17-digit number that merely starts like a card
      'order 9111111111111111 shipped',
      'amount 4111111111111111.50',
    ],
  },
  iban: {
    positive: [
      { text: 'IBAN DE89 3704 0044 0532 0130 00 (EUR)', secrets: ['DE89 3704 0044 0532 0130 00'] },
      { text: 'GB82WEST12345698765432', secrets: ['GB82WEST12345698765432'] },
      { text: `pay to ${fake.iban(3)} today`, secrets: [fake.iban(3)] },
      { text: `NL: ${withIbanChecksum('NL', 'ABNA0417164300')}`, secrets: [withIbanChecksum('NL', 'ABNA0417164300')] },
    ],
    negative: [
      'DE89 3704 0044 0532 0130 01', // checksum
      'DE89370400440532013000X', // runs on
      `ZZ${fake.iban(4).slice(2)}`, // no such country
      'GB82WEST1234569876543', // one short for GB
      'DE893704 0044 0532 0130 00', // spaces off the groups of four
      'SKU AB12CDEFGHIJKLMNOP',
    ],
  },
  email: {
    positive: [
      { text: 'mail alice@example.com.', secrets: ['alice@example.com'] },
      { text: 'To: <first.last+tag@mail.example.co.uk>', secrets: ['first.last+tag@mail.example.co.uk'] },
      { text: '"owner":"bob_99@example.org","x":1', secrets: ['bob_99@example.org'] },
    ],
    negative: ['icon@2x.png', '@modelcontextprotocol/sdk@1.2.3', 'user@localhost', 'a@b', 'foo@bar.123', 'handle @alice on chat'],
  },
};

/** Things tool results are full of that no detector may match. */
export const LOOK_ALIKES: readonly string[] = [
  '8f14e45f-ceea-467f-a1b2-3c4d5e6f7a8b',
  '550e8400-e29b-41d4-a716-446655440000',
  'commit 3f786850e387550fdab836ed7e6dc881de23001b',
  'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  `data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ${chars(B64, 400, 11)}`,
  chars('0123456789abcdef', 128, 12),
  chars(B64, 512, 13),
  luhnBad(fake.cardNumber(14)),
  '1733530000000',
  'DE00 3704 0044 0532 0130 00',
  'version 1.2.3-beta.4+build.5678, node v20.20.2',
  'fe80::1ff:fe23:4567:890a and 192.168.100.200',
  '2026-03-14T09:41:00.000Z',
  '/home/alice/work/src/engine/policy/compile.ts:142:17',
  'https://example.com/search?q=secret+key&page=2',
  'Order #40012 total 4,111.11 EUR, ref 5555-5555',
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user-at-host',
];
