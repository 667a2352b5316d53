import { describe, expect, it } from 'vitest';
import { Gate, PolicyError, parsePolicyDocument, parsePolicyText } from '../../../src/engine/index.ts';
import { fake } from './fakes.ts';

const DESIGN_EXAMPLE = `
[[policy]]
name = "read"
effect = "permit"
conditions = [ { action = "fs.*" } ]

[[screen]]
name = "no-secrets-to-the-model"
actions = ["fs.*", "shell.*"]          # optional; default every action
detectors = ["aws_access_key", "github_token", "private_key", "jwt", "slack_token", "card_number"]
patterns = [ { name = "ticket", regex = "TCK-[0-9]{6}" } ]
mode = "redact"                        # or "block" (OUTPUT_BLOCKED) or "report"
`;

const AKIA = fake.awsAccessKey(1);

function loadError(doc: object): string {
  try {
    parsePolicyDocument(doc);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as Error).message;
  }
  throw new Error('expected a PolicyError');
}

const screen = (fields: object) => ({ policies: [], screen: [{ name: 's', detectors: ['email'], mode: 'redact', ...fields }] });

describe('[[screen]] in policy files', () => {
  it('loads the DESIGN §13 example from TOML, and the same from JSON', () => {
    const toml = parsePolicyText(DESIGN_EXAMPLE, 'toml');
    expect(toml.screens).toEqual([
      {
        name: 'no-secrets-to-the-model',
        actions: ['fs.*', 'shell.*'],
        detectors: ['aws_access_key', 'github_token', 'private_key', 'jwt', 'slack_token', 'card_number'],
        patterns: [{ name: 'ticket', regex: 'TCK-[0-9]{6}' }],
        mode: 'redact',
      },
    ]);
    const json = parsePolicyText(JSON.stringify({ policies: [], screen: [{ ...toml.screens[0] }] }), 'json');
    expect(json.screens).toEqual(toml.screens);
    expect(parsePolicyDocument({ policies: [], screens: toml.screens }).screens).toEqual(toml.screens);
  });

  it('leaves the screen list empty when a file has none', () => {
    expect(parsePolicyText('[[policy]]\nname = "p"\neffect = "permit"\nconditions = []\n', 'toml').screens).toEqual([]);
  });

  it.each([
    [{ mod: 'redact' }, 'screen[0].mod: unknown key (did you mean "mode"?)'],
    [{ mode: 'mask' }, 'screen[0].mode: must be one of "redact", "block", "report"'],
    [
      { detectors: ['email', 'jwt', 'aws_key'] },
      'screen[0].detectors[2]: unknown detector "aws_key"; did you mean "aws_access_key" or "aws_secret_key"?',
    ],
    [{ detectors: ['github'] }, 'screen[0].detectors[0]: unknown detector "github"; did you mean "github_token"?'],
    [{ detectors: ['emial'] }, 'screen[0].detectors[0]: unknown detector "emial"; did you mean "email"?'],
    [{ detectors: ['email', 'email'] }, 'screen[0].detectors[1]: "email" is listed twice'],
    [{ detectors: [] }, 'screen[0].detectors: a screen needs at least one detector or pattern'],
    [{ actions: [] }, 'screen[0].actions: must not be empty (leave actions out to screen every action)'],
    [{ actions: ['fs\\..*'] }, 'screen[0].actions[0]: "fs\\..*" looks like a regular expression; globs use only * (any run of characters)'],
    [{ patterns: [{ name: 'x', regex: '(' }] }, 'screen[0].patterns[0].regex: not a valid regular expression'],
    [{ patterns: [{ name: 'x', regex: '(a+)+b' }] }, 'screen[0].patterns[0].regex: unbounded repetition "+" at offset 2: write a bound'],
    [{ patterns: [{ name: 'x', regex: '(a|a){1,30}' }] }, 'screen[0].patterns[0].regex: may take astronomically many steps'],
    [{ patterns: [{ name: 'x', regex: '(ab)\\1' }] }, 'screen[0].patterns[0].regex: backreference at offset 4'],
    [{ patterns: [{ name: 'x', regex: 'TCK-[0-9]{6}', flags: 'i' }] }, 'screen[0].patterns[0].flags: unknown key'],
    [{ patterns: [{ name: 'jwt', regex: 'x{3}' }] }, 'screen[0].patterns[0].name: "jwt" is a built-in detector'],
    [{ patterns: [{ name: 'a b', regex: 'x{3}' }] }, 'screen[0].patterns[0].name: must be 1-64 letters'],
    [
      {
        patterns: [
          { name: 't', regex: 'x{3}' },
          { name: 't', regex: 'y{3}' },
        ],
      },
      'screen[0].patterns[1].name: duplicate pattern name "t"',
    ],
  ])('refuses %j naming the path', (fields, message) => {
    expect(loadError(screen(fields))).toContain(message);
  });

  it('refuses duplicate screen names, both spellings of the list, and a screen that is not a table', () => {
    const one = { name: 's', detectors: ['email'], mode: 'report' };
    expect(loadError({ screen: [one, one] })).toBe('screen[1].name: duplicate screen name "s" (also screen[0])');
    expect(loadError({ screen: [one], screens: [one] })).toBe('screens: use either "screen" or "screens", not both');
    expect(loadError({ screen: ['email'] })).toBe('screen[0]: a screen must be a table');
  });
});

describe('Gate.screen', () => {
  it('screens with the screens in force for the action', () => {
    const gate = Gate.fromToml(DESIGN_EXAMPLE);
    const result = gate.screen({ actionName: 'fs.read' }, { content: [{ type: 'text', text: `TCK-004211 ${fake.githubToken(1)}` }] });
    expect(result.output).toEqual({ content: [{ type: 'text', text: '[REDACTED:ticket] [REDACTED:github_token]' }] });
    expect(result.findings.map((f) => f.detector)).toEqual(['github_token', 'ticket']);
    const other = { content: [{ type: 'text', text: fake.githubToken(1) }] };
    expect(gate.screen({ actionName: 'db.query' }, other).output).toBe(other);
  });

  it('replaces the screens on reload, together with the policies, and keeps them when a reload fails', () => {
    const gate = Gate.fromDict({ policies: [], screen: [{ name: 'keys', detectors: ['aws_access_key'], mode: 'block' }] });
    const output = `key ${AKIA}`;
    expect(gate.screen({ actionName: 'x' }, output).blocked?.screens).toEqual(['keys']);
    expect(() => gate.reload({ policies: [], screen: [{ name: 'keys', detectors: ['aws_key'], mode: 'block' }] })).toThrow(PolicyError);
    expect(gate.screen({ actionName: 'x' }, output).blocked?.screens).toEqual(['keys']);
    gate.reload({ policies: [], screen: [{ name: 'mails', detectors: ['email'], mode: 'redact' }] });
    expect(gate.screen({ actionName: 'x' }, output)).toEqual({ output, findings: [] });
    gate.reload('');
    expect(gate.screen({ actionName: 'x' }, 'alice@example.com').output).toBe('alice@example.com');
  });
});
