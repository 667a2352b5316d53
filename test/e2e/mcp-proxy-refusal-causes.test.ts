// What the model reads when the proxy refuses a filesystem call: the cause (a ".." segment, a
// relative path, outside which root, which exclude, a symlink leading out) and a refusing policy's
// description, through the real proxy in front of the real server-filesystem. Never where a link
// leads, never a file's contents.
import { mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, FILESYSTEM, keygen, q, startProxy, tempDir, textOf, write, type RunningProxy } from './proxy-harness.ts';

let dir: string;
let root: string;
let proxy: RunningProxy;

beforeAll(async () => {
  dir = realpathSync(tempDir());
  root = join(dir, 'root');
  mkdirSync(join(dir, 'hidden-place'), { recursive: true });
  mkdirSync(root);
  writeFileSync(join(root, 'hello.txt'), 'hello\n');
  writeFileSync(join(root, '.env'), 'TOKEN=env-file-contents\n');
  writeFileSync(join(dir, 'hidden-place', 'secret.txt'), 'contents outside the root\n');
  symlinkSync(join(dir, 'hidden-place'), join(root, 'elsewhere'));
  await keygen(dir);
  write(
    join(dir, 'policy.toml'),
    `
[[policy]]
name = "fs-read"
description = "Read inside the project."
effect = "permit"
conditions = [
  { action = "fs.read_text_file" },
  { path_within = { field = "path", roots = [${q(root)}], exclude = ["*/.env", "*/.git"], follow_links = true } },
]

[[policy]]
name = "no-keys"
description = "Key files stay on this machine; ask the user to paste what you need."
effect = "refuse"
conditions = [{ action = "fs*" }, { param_glob = { field = "path", pattern = "*.pem" } }]
`,
  );
  write(
    join(dir, 'kavach.toml'),
    `
[gate]
policy = "policy.toml"
[identity]
principal_id = "alice-laptop"
principal_kind = "agent"
[keys]
path = "keys/secret.key"
# record_args is off (the default): no argument value may reach the log, refusal reasons included.
[audit]
path = "audit/mcp.jsonl"
[servers.fs]
command = ${q(process.execPath)}
args = [${q(FILESYSTEM)}, ${q(root)}]
`,
  );
  proxy = await startProxy(join(dir, 'kavach.toml'));
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  cleanup(dir);
});

const read = (path: string) => proxy.client.callTool({ name: 'fs__read_text_file', arguments: { path } });
// The path is never quoted: the reason is audited even where record_args is off (the caller knows what it sent).
const refusedBecause = (cause: string) =>
  `Refused by policy [NO_POLICY_MATCH] policy: no policy permits 'fs.read_text_file' for agent 'alice-laptop'; 'fs-read' does not allow the value of path: it ${cause}.`;

const refusedPaths: string[] = [];

describe('the refusal text names the cause of a path_within refusal', () => {
  it('reads a file inside the root (the policy works)', async () => {
    const ok = await read(join(root, 'hello.txt'));
    expect(ok.isError, textOf(ok)).toBeFalsy();
    expect(textOf(ok)).toContain('hello');
  });

  it.each([
    ['a .. segment', () => `${root}/../hidden-place/secret.txt`, 'has a ".." segment'],
    ['a relative path', () => 'hello.txt', 'is a relative path (paths must be absolute)'],
    ['outside the roots, naming them', () => join(dir, 'hidden-place', 'secret.txt'), () => `is outside the root ${JSON.stringify(root)}`],
    ['excluded by */.env', () => join(root, '.env'), 'is excluded by "*/.env"'],
    [
      'a symlink leading outside (follow_links)',
      () => join(root, 'elsewhere', 'secret.txt'),
      () => `leads through a symlink to a path that is outside the root ${JSON.stringify(root)}`,
    ],
  ])('%s', async (_label, path, cause) => {
    const result = await read(path());
    expect(result.isError).toBe(true);
    const text = textOf(result);
    expect(text).toBe(refusedBecause(typeof cause === 'string' ? cause : cause()));
    expect(text).not.toContain(path());
    expect(result._meta?.['dev.kavach/verdict']).toMatchObject({ code: 'NO_POLICY_MATCH', policy: 'fs-read' });
    expect(text).not.toContain('contents');
    expect(text).not.toContain('hidden-place');
    refusedPaths.push(path());
  });

  it('POLICY_DENIED carries the refusing policy description', async () => {
    const result = await read(join(root, 'server.pem'));
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe(
      "Refused by policy [POLICY_DENIED] policy: 'no-keys' refuses 'fs.read_text_file' for agent 'alice-laptop': Key files stay on this machine; ask the user to paste what you need.",
    );
    expect(result._meta?.['dev.kavach/verdict']).toMatchObject({ code: 'POLICY_DENIED', policy: 'no-keys' });
  });
});

describe('the audit log, with record_args off', () => {
  it('holds the refusals and their causes, but none of the refused paths', async () => {
    expect(refusedPaths.length).toBeGreaterThan(0); // the refusals above ran first
    await proxy.close();
    const log = readFileSync(join(dir, 'audit/mcp.jsonl'), 'utf8');
    expect(log).toContain('does not allow the value of path: it has a \\"..\\" segment'); // as JSON escapes it
    for (const path of refusedPaths) expect(log).not.toContain(JSON.stringify(path).slice(1, -1));
    expect(log).not.toContain('hidden-place');
  });
});
