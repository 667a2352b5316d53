import { describe, expect, it } from 'vitest';
import { describeWithheld, screenOutput } from '../../../src/engine/screen/screen-output.ts';
import { fake } from './fakes.ts';
import { ALL_DETECTORS, ctx, redactAll, screensOf } from './helpers.ts';

const AKIA = fake.awsAccessKey(1);
const GHP = fake.githubToken(2);

describe('screenOutput', () => {
  it('returns the very same object, with no findings, when nothing is found', () => {
    const output = {
      content: [{ type: 'text', text: 'all quiet: 8f14e45f-ceea-467f-a1b2-3c4d5e6f7a8b' }],
      structuredContent: { n: 1733530000000 },
    };
    const result = screenOutput(redactAll(), ctx(), output);
    expect(result.output).toBe(output);
    expect(result.findings).toEqual([]);
    expect(result.blocked).toBeUndefined();
  });

  it('returns at once, untouched, when no screen applies to the action', () => {
    const screens = redactAll({ actions: ['fs.*'] });
    const output = { content: [{ type: 'text', text: `key ${AKIA}` }] };
    const result = screenOutput(screens, ctx('fsx.read'), output);
    expect(result.output).toBe(output);
    expect(result.findings).toEqual([]);
    expect(screenOutput(screens, ctx('fs.read'), output).findings).toHaveLength(1);
  });

  it('reads actions the narrower way: `fs.*` does not cover `fs_read`', () => {
    const screens = redactAll({ actions: ['fs.*'] });
    expect(screenOutput(screens, ctx('fs_read'), `key ${AKIA}`).findings).toEqual([]);
  });

  it('redacts text content in place and says where, never what', () => {
    const output = { content: [{ type: 'text', text: `id ${AKIA} and ${GHP} and ${AKIA}` }], isError: false };
    const result = screenOutput(redactAll(), ctx(), output);
    expect(result.output).toEqual({
      content: [{ type: 'text', text: 'id [REDACTED:aws_access_key] and [REDACTED:github_token] and [REDACTED:aws_access_key]' }],
      isError: false,
    });
    expect(result.findings).toEqual([
      { screen: 'secrets', detector: 'aws_access_key', path: '/content/0/text', count: 2 },
      { screen: 'secrets', detector: 'github_token', path: '/content/0/text', count: 1 },
    ]);
    expect(output.content[0]?.text).toContain(AKIA); // the input is never mutated
  });

  it('walks structuredContent and embedded resources, copying only the changed branches', () => {
    const untouched = { rows: [1, 2, 3] };
    const output = {
      content: [
        { type: 'text', text: 'see resource' },
        { type: 'resource', resource: { uri: 'file:///env', mimeType: 'text/plain', text: `TOKEN=${GHP}` } },
      ],
      structuredContent: { user: { email: 'alice@example.com' }, untouched },
    };
    const result = screenOutput(redactAll(), ctx(), output);
    const out = result.output as typeof output;
    expect(out.content[1]).toEqual({
      type: 'resource',
      resource: { uri: 'file:///env', mimeType: 'text/plain', text: 'TOKEN=[REDACTED:github_token]' },
    });
    expect(out.structuredContent.user.email).toBe('[REDACTED:email]');
    expect(out.content[0]).toBe(output.content[0]);
    expect(out.structuredContent.untouched).toBe(untouched);
    expect(result.findings.map((f) => f.path)).toEqual(['/content/1/resource/text', '/structuredContent/user/email']);
  });

  it('walks a text that holds JSON as JSON: pointers go into it and it stays parseable, indentation kept', () => {
    const doc = { aws: { id: AKIA, region: 'ap-south-1' }, note: 'x' };
    const output = { content: [{ type: 'text', text: JSON.stringify(doc, null, 2) }] };
    const result = screenOutput(redactAll(), ctx(), output);
    const text = (result.output as typeof output).content[0]?.text as string;
    expect(JSON.parse(text)).toEqual({ aws: { id: '[REDACTED:aws_access_key]', region: 'ap-south-1' }, note: 'x' });
    expect(text).toBe(JSON.stringify(JSON.parse(text), null, 2));
    expect(result.findings).toEqual([{ screen: 'secrets', detector: 'aws_access_key', path: '/content/0/text/aws/id', count: 1 }]);
  });

  it('leaves a JSON text without findings byte for byte as it was', () => {
    const text = '{ "a":1,   "b":[ 1.50 ] }';
    const output = { content: [{ type: 'text', text }] };
    expect(screenOutput(redactAll(), ctx(), output).output).toBe(output);
  });

  it('screens any value a tool returns: a bare string, arrays, numbers', () => {
    expect(screenOutput(redactAll(), ctx(), `hi ${AKIA}`).output).toBe('hi [REDACTED:aws_access_key]');
    const result = screenOutput(redactAll(), ctx(), [{ pan: 4111111111111111, qty: 3 }]);
    expect(result.output).toEqual([{ pan: '[REDACTED:card_number]', qty: 3 }]);
    expect(result.findings).toEqual([{ screen: 'secrets', detector: 'card_number', path: '/0/pan', count: 1 }]);
  });

  it('screens object keys, and a finding in a key does not put the key in the path', () => {
    const output = { tokens: { [GHP]: 'alice', [fake.githubToken(3)]: 'bob' } };
    const result = screenOutput(redactAll(), ctx(), output);
    expect(result.output).toEqual({ tokens: { '[REDACTED:github_token]': 'alice', '[REDACTED:github_token] (2)': 'bob' } });
    expect(JSON.stringify(result.findings)).not.toContain(GHP);
    expect(result.findings[0]?.path).toBe('/tokens/[REDACTED:github_token]');
  });

  it('masks a key in the path even in report mode, where the output itself is left alone', () => {
    const screens = screensOf({ name: 'watch', detectors: ['github_token'], mode: 'report' });
    const output = { [GHP]: { note: `again ${GHP}` } };
    const result = screenOutput(screens, ctx(), output);
    expect(result.output).toBe(output);
    expect(result.findings).toEqual([
      { screen: 'watch', detector: 'github_token', path: '/[REDACTED:github_token]', count: 1 },
      { screen: 'watch', detector: 'github_token', path: '/[REDACTED:github_token]/note', count: 1 },
    ]);
  });

  it('skips base64 binary payloads (image/audio data, resource blobs)', () => {
    const data = Buffer.from(`binary ${AKIA} bytes`).toString('base64') + AKIA;
    const output = {
      content: [
        { type: 'image', mimeType: 'image/png', data },
        { type: 'resource', resource: { uri: 'file:///x.bin', blob: data } },
      ],
    };
    expect(screenOutput(redactAll(), ctx(), output).output).toBe(output);
    // The same where resources/read and prompts/get put them; whitespace in base64 is allowed.
    const wrapped = `${data.slice(0, 40)}\n${data.slice(40)}`;
    const read = { contents: [{ uri: 'file:///x.bin', blob: wrapped }] };
    expect(screenOutput(redactAll(), ctx(), read).output).toBe(read);
    const prompt = {
      messages: [
        { role: 'user', content: { type: 'audio', mimeType: 'audio/wav', data } },
        { role: 'user', content: { type: 'resource', resource: { uri: 'file:///x.bin', blob: data } } },
      ],
    };
    expect(screenOutput(redactAll(), ctx(), prompt).output).toBe(prompt);
  });

  it('screens image/audio `data` and resource `blob` that are not base64, as text', () => {
    const result = screenOutput(redactAll(), ctx(), {
      content: [
        { type: 'image', mimeType: 'text/plain', data: `key ${AKIA}` },
        { type: 'audio', mimeType: 'audio/wav', data: GHP },
        { type: 'resource', resource: { uri: 'file:///.env', mimeType: 'text/plain', blob: `AWS=${AKIA}` } },
      ],
    });
    expect(result.findings.map((f) => f.path)).toEqual(['/content/0/data', '/content/1/data', '/content/2/resource/blob']);
    const read = screenOutput(redactAll(), ctx(), { contents: [{ uri: 'file:///.env', blob: `${AKIA}==` }] });
    expect(read.findings.map((f) => f.path)).toEqual(['/contents/0/blob']);
  });

  it('screens base64 in the shape of image data or a blob anywhere but an MCP content position', () => {
    const screens = screensOf({ name: 'secrets', detectors: ['aws_access_key'], mode: 'block' });
    const image = (data: string) => ({ type: 'image', mimeType: 'image/png', data });
    const blob = (b: string) => ({ uri: 'file:///x', blob: b });
    // AKIA… is itself valid base64 (20 characters): only its position decides.
    const outputs = [
      { content: [], structuredContent: image(AKIA) },
      { content: [{ type: 'text', text: JSON.stringify(image(AKIA)) }] },
      { content: [{ type: 'text', text: JSON.stringify({ content: [image(AKIA)] }) }] },
      { content: [{ type: 'text', text: JSON.stringify(blob(AKIA)) }] },
      { content: [], structuredContent: { content: [image(AKIA)], contents: [blob(AKIA)] } },
      { content: [{ type: 'text', text: 'x', annotations: image(AKIA) }] },
      { content: [{ type: 'text', resource: blob(AKIA) }] },
      { content: [blob(AKIA)] },
      image(AKIA),
      { contents: { 0: blob(AKIA) } },
      JSON.stringify({ content: [image(AKIA)], contents: [blob(AKIA)] }),
    ];
    for (const output of outputs)
      expect(screenOutput(screens, ctx(), output).blocked?.detectors, JSON.stringify(output)).toEqual(['aws_access_key']);
  });

  it('blocks in block mode, naming the kind of thing withheld and never the value', () => {
    const screens = screensOf({ name: 'no-keys', detectors: ['aws_access_key', 'private_key'], mode: 'block' });
    const output = { content: [{ type: 'text', text: `${AKIA}\n${fake.privateKey(1)}` }] };
    const result = screenOutput(screens, ctx(), output);
    expect(result.blocked).toEqual({
      screens: ['no-keys'],
      detectors: ['aws_access_key', 'private_key'],
      kinds: ['an AWS access key ID', 'a private key'],
    });
    const message = describeWithheld(result.blocked as NonNullable<typeof result.blocked>);
    expect(message).toBe("the tool's result was withheld: it contained an AWS access key ID and a private key (screen 'no-keys')");
    expect(message).not.toContain(AKIA);
    expect(result.output).toBe(output); // withheld whole by the caller, so not rewritten
  });

  it('only records in report mode', () => {
    const screens = screensOf({ name: 'audit-only', detectors: ['email'], mode: 'report' });
    const output = { content: [{ type: 'text', text: 'write to alice@example.com' }] };
    const result = screenOutput(screens, ctx(), output);
    expect(result.output).toBe(output);
    expect(result.blocked).toBeUndefined();
    expect(result.findings).toEqual([{ screen: 'audit-only', detector: 'email', path: '/content/0/text', count: 1 }]);
  });

  it('runs a detector listed by several screens once, and reports it under each', () => {
    const screens = screensOf(
      { name: 'redact-keys', detectors: ['aws_access_key'], mode: 'redact' },
      { name: 'watch-keys', detectors: ['aws_access_key', 'email'], mode: 'report' },
    );
    const result = screenOutput(screens, ctx(), `${AKIA} alice@example.com`);
    expect(result.output).toBe('[REDACTED:aws_access_key] alice@example.com');
    expect(result.findings).toEqual([
      { screen: 'redact-keys', detector: 'aws_access_key', path: '', count: 1 },
      { screen: 'watch-keys', detector: 'aws_access_key', path: '', count: 1 },
      { screen: 'watch-keys', detector: 'email', path: '', count: 1 },
    ]);
  });

  it('redacts custom patterns by name, and overlapping matches as one', () => {
    const screens = screensOf({
      name: 's',
      detectors: ['aws_access_key'],
      patterns: [
        { name: 'ticket', regex: 'TCK-[0-9]{6}' },
        { name: 'akia_prefix', regex: 'AKIA[A-Z0-9]{4}' },
      ],
      mode: 'redact',
    });
    const result = screenOutput(screens, ctx(), `TCK-004211 then ${AKIA}!`);
    expect(result.output).toBe('[REDACTED:ticket] then [REDACTED:aws_access_key]!');
    expect(result.findings.map((f) => [f.detector, f.count])).toEqual([
      ['aws_access_key', 1],
      ['ticket', 1],
      ['akia_prefix', 1],
    ]);
  });

  it('withholds what it cannot screen (a cycle, a Map, a throwing getter) when a screen enforces', () => {
    const cyclic: Record<string, unknown> = { a: 'x' };
    cyclic.self = cyclic;
    const hostile = Object.defineProperty({}, 'text', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    for (const output of [cyclic, { m: new Map([['k', AKIA]]) }, hostile]) {
      const result = screenOutput(redactAll(), ctx(), output);
      expect(result.blocked).toEqual({ screens: ['secrets'], detectors: ['unscreenable'], kinds: [], unscreenable: true });
      expect(describeWithheld(result.blocked as NonNullable<typeof result.blocked>)).toContain('could not be screened');
    }
  });

  it('only reports what it cannot screen when every screen is report-only', () => {
    const screens = screensOf({ name: 'watch', detectors: ALL_DETECTORS, mode: 'report' });
    const deep: unknown[] = [];
    let at = deep;
    for (let i = 0; i < 300; i++) at.push((at = []));
    const result = screenOutput(screens, ctx(), deep);
    expect(result.blocked).toBeUndefined();
    expect(result.findings).toHaveLength(1);
    expect(result.findings[0]).toMatchObject({ screen: 'watch', detector: 'unscreenable', count: 1 });
  });

  it('treats dates and binary as opaque, and class instances keep their prototype when redacted', () => {
    class Reply {
      constructor(public body: string) {}
      shout(): string {
        return this.body.toUpperCase();
      }
    }
    const when = new Date(0);
    const result = screenOutput(redactAll(), ctx(), { when, bytes: new Uint8Array([1, 2]), reply: new Reply(`k ${AKIA}`) });
    const out = result.output as { when: Date; reply: Reply };
    expect(out.when).toBe(when);
    expect(out.reply).toBeInstanceOf(Reply);
    expect(out.reply.shout()).toBe('K [REDACTED:AWS_ACCESS_KEY]');
  });
});
