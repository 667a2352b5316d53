/**
 * What a first install writes beside kavach.toml so that observe mode shows something: a key
 * (the audit log's checkpoints are signed with it), an `[audit]` section, a starter policy, and
 * the command that turns the log into a page a person can read.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { KeyPair } from '../crypto/keys.ts';

export const STARTER_POLICY = 'kavach-policy.toml';
export const STARTER_KEY = 'keys/secret.key';
export const STARTER_PUBLIC_KEYS = 'keys/public.json';
/** `{pid}`: a client may run several proxies at once (one per window), and a log has one writer. */
export const STARTER_AUDIT = 'audit/mcp-{pid}.jsonl';

/** The head of a new kavach.toml; `kavach mcp install` appends the `[servers.*]` tables. */
export function starterConfigText(label: string, principalId = defaultPrincipal()): string {
  return `# kavach.toml, written by \`kavach mcp install\` for ${label}.
# The servers below used to be started by the client itself; now it starts the kavach proxy,
# which starts them and decides on every tool call.

[gate]
policy = ${JSON.stringify(STARTER_POLICY)}
# Observe mode: every call goes through. Each call enforcement would refuse is logged on the
# proxy's stderr (one line; the client's MCP log shows it) and recorded in the audit log.
# Write policies until the report shows no surprise, then set this to false.
observe_only = true

[identity]
principal_id = ${JSON.stringify(principalId)}
principal_kind = "agent"
roles = []

[keys]
# Made by kavach mcp install (unencrypted, mode 0600): it signs the audit log's checkpoints.
path = ${JSON.stringify(STARTER_KEY)}
# The servers behind the proxy do not check permits, so none is signed per call.
sign_permits = false

[audit]
path = ${JSON.stringify(STARTER_AUDIT)}
# Argument values are kept, so a reviewer sees which file a call wrote; these are left out.
record_args = true
redact = ["/content", "/password", "/token", "/secret", "/api_key", "/apiKey"]
`;
}

export const STARTER_POLICY_TEXT = `# Kavach policy for the MCP proxy. Tools are "<server>.<tool>"; examples ship in the kavach
# package (where npm put it, e.g. node_modules/kavach): policies/fs.toml, examples/mcp/policy.toml.
# With no policy every call is refused; kavach.toml starts in observe mode so nothing breaks
# while you write them.

# [[policy]]
# name = "read-only-fs"
# effect = "permit"
# conditions = [{ action = "fs.read_*" }, { path_within = { field = "path", roots = ["/home/me/work"] } }]
`;

/**
 * What `writeStarterFiles` would write next to a new kavach.toml (what is present is kept): the
 * starter policy with its text, and the key pair by path only (a key is made, not shown).
 */
export function starterFilesPlan(configPath: string): { policy?: { path: string; text: string }; keys?: string[] } {
  const dir = dirname(configPath);
  const plan: { policy?: { path: string; text: string }; keys?: string[] } = {};
  if (!existsSync(join(dir, STARTER_KEY))) plan.keys = [join(dir, STARTER_KEY), join(dir, STARTER_PUBLIC_KEYS)];
  const policy = join(dir, STARTER_POLICY);
  if (!existsSync(policy)) plan.policy = { path: policy, text: STARTER_POLICY_TEXT };
  return plan;
}

/** Creates the key pair and the starter policy next to a new kavach.toml (kept when present). */
export async function writeStarterFiles(configPath: string): Promise<string[]> {
  const dir = dirname(configPath);
  const written: string[] = [];
  await mkdir(join(dir, 'keys'), { recursive: true, mode: 0o700 });
  await mkdir(join(dir, 'audit'), { recursive: true, mode: 0o700 });
  const secret = join(dir, STARTER_KEY);
  if (!existsSync(secret)) {
    const keyPair = KeyPair.generate();
    await keyPair.save(secret);
    const publicPath = join(dir, STARTER_PUBLIC_KEYS);
    await writeFile(publicPath, `${JSON.stringify(keyPair.publicKeys(), null, 2)}\n`, { mode: 0o644 });
    await chmod(publicPath, 0o644);
    written.push(secret, publicPath);
  }
  const policy = join(dir, STARTER_POLICY);
  if (!existsSync(policy)) {
    await writeFile(policy, STARTER_POLICY_TEXT, { mode: 0o600 });
    written.push(policy);
  }
  return written;
}

/**
 * The command that shows what a config's proxy recorded, or undefined when it records nothing.
 * `auditPath` is as written in the file: a `{pid}` in it becomes a glob over every process's log.
 */
export function reportCommand(
  configPath: string,
  auditPath: string | undefined,
  keyPath: string | undefined,
  kavach: readonly string[],
): string | undefined {
  if (auditPath === undefined) return undefined;
  const dir = dirname(configPath);
  const log = resolve(dir, auditPath);
  const words = log.split('{pid}').map(shellQuote).join('*');
  const keys = keyPath !== undefined ? join(dirname(resolve(dir, keyPath)), 'public.json') : join(dir, STARTER_PUBLIC_KEYS);
  return [
    ...kavach.map(shellQuote),
    'audit',
    'report',
    words,
    '--keys',
    shellQuote(keys),
    '--out',
    shellQuote(join(dir, 'report.html')),
  ].join(' ');
}

/** A POSIX shell word for `s` (quoted only when it needs to be). */
export function shellQuote(s: string): string {
  return s === '' ? "''" : /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function defaultPrincipal(): string {
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry: keep the default
  }
  return `${user}@${hostname()}`;
}
