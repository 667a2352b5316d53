import { beforeAll, describe, expect, it } from 'vitest';
import { KeyPair, PermitSigner, PermitVerifier, PublicKeyDirectory } from '../../src/crypto/index.ts';
import { InMemoryReplayStore } from '../../src/engine/stores.ts';
import { requirePermit } from '../../src/mcp-proxy/index.ts';

let signer: PermitSigner;
let verifier: PermitVerifier;

beforeAll(() => {
  const kp = KeyPair.generate();
  signer = PermitSigner.fromKeyPair(kp, { mode: 'pq' });
  verifier = new PermitVerifier({
    keys: PublicKeyDirectory.inMemory(kp.publicKeys()),
    mode: 'pq',
    audience: 'notes',
    replay: new InMemoryReplayStore(),
  });
});

async function permit(action: string, args: unknown, audience = 'notes'): Promise<string> {
  const now = Date.now();
  const issued = await signer.issue({
    principalId: 'alice',
    principalKind: 'agent',
    action,
    args,
    evaluationId: 'e-1',
    audience,
    issuedAt: now,
    expiresAt: now + 30_000,
  });
  return issued.token;
}

const text = (r: { content: { type: string; text?: string }[] }) => r.content.map((c) => c.text).join('');

describe('requirePermit', () => {
  const calls: string[] = [];
  const guarded = () =>
    requirePermit(
      async (args: { title: string }, extra) => {
        calls.push(`${args.title} by ${extra.permit.sub}`);
        return { content: [{ type: 'text' as const, text: 'ran' }] };
      },
      { verifier, audience: 'notes', tool: 'add_note' },
    );
  let handler: ReturnType<typeof guarded>;
  beforeAll(() => {
    handler = guarded();
  });

  it('runs the handler with a permit for this tool and exactly these arguments, once', async () => {
    const token = await permit('notes.add_note', { title: 'a' });
    expect(text(await handler({ title: 'a' }, { _meta: { 'dev.kavach/permit': token } }))).toBe('ran');
    expect(calls).toEqual(['a by alice']);
    const replayed = await handler({ title: 'a' }, { _meta: { 'dev.kavach/permit': token } });
    expect(replayed.isError).toBe(true);
    expect(text(replayed)).toContain('[REPLAYED]');
  });

  it.each([
    ['no permit', async () => undefined, '[BAD_FORMAT]'],
    ['other arguments', () => permit('notes.add_note', { title: 'b' }), '[ARGS_MISMATCH]'],
    ['another tool', () => permit('notes.delete_note', { title: 'a' }), '[WRONG_ACTION]'],
    ['another server', () => permit('notes.add_note', { title: 'a' }, 'files'), '[WRONG_AUDIENCE]'],
    ['garbage', async () => 'kv1.not.a-token', 'Permit refused ['],
  ])('refuses %s without running the handler', async (_label, make, code) => {
    const before = calls.length;
    const token = await make();
    const result = await handler({ title: 'a' }, token === undefined ? {} : { _meta: { 'dev.kavach/permit': token } });
    expect(result.isError).toBe(true);
    expect(text(result)).toContain(code);
    expect(calls.length).toBe(before);
  });

  it('with a verifier shared by several servers, a permit for another audience is refused without being used up', async () => {
    const kp = KeyPair.generate();
    const own = PermitSigner.fromKeyPair(kp, { mode: 'pq', pool: false });
    const shared = new PermitVerifier({ keys: kp.publicKeys(), mode: 'pq', replay: new InMemoryReplayStore() });
    const notes = requirePermit(async () => ({ content: [{ type: 'text' as const, text: 'ran' }] }), {
      verifier: shared,
      audience: 'notes',
      tool: 'add_note',
    });
    const now = Date.now();
    const { token } = await own.issue({
      principalId: 'alice',
      principalKind: 'agent',
      action: 'notes.add_note',
      args: { title: 'a' },
      evaluationId: 'e-2',
      audience: 'files',
      issuedAt: now,
      expiresAt: now + 30_000,
    });
    expect(text(await notes({ title: 'a' }, { _meta: { 'dev.kavach/permit': token } }))).toContain('[WRONG_AUDIENCE]');
    // Still unused: its own audience can redeem it once.
    await expect(shared.verify(token, { action: 'notes.add_note', args: { title: 'a' }, audience: 'files' })).resolves.toMatchObject({
      aud: 'files',
    });
    await expect(shared.verify(token, { action: 'notes.add_note', args: { title: 'a' }, audience: 'files' })).rejects.toMatchObject({
      code: 'REPLAYED',
    });
  });

  it('needs to know the tool it guards', () => {
    expect(() => requirePermit(async () => ({ content: [] }), { verifier, audience: 'notes', tool: '' })).toThrow(TypeError);
  });
});
