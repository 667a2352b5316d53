import { PassThrough, Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { decodeLine, LineFramer, oversizeAnswerId, type OversizeLine } from '../../src/mcp-proxy/line-framing.ts';
import { ChildProcessTransport, isTooLargeAnswer, LineServerTransport } from '../../src/mcp-proxy/line-transport.ts';
import { keepRawAnswer } from '../../src/mcp-proxy/raw-answer.ts';
import { nestedTooDeep, until } from './in-process.ts';

function framer(max = 1024): { lines: string[]; oversize: number; skipped: OversizeLine[]; f: LineFramer } {
  const out = { lines: [] as string[], oversize: 0, skipped: [] as OversizeLine[], f: undefined as unknown as LineFramer };
  out.f = new LineFramer(
    (l) => out.lines.push(l),
    (line) => {
      out.oversize++;
      out.skipped.push(line);
    },
    max,
  );
  return out;
}

describe('line framing', () => {
  it('reassembles messages split anywhere across chunks, several per chunk, CRLF or LF', () => {
    const text = '{"jsonrpc":"2.0","method":"a"}\r\n{"jsonrpc":"2.0","method":"b"}\n\n{"jsonrpc":"2.0","method":"c"}\n';
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const t = framer();
      t.f.push(bytes.subarray(0, cut));
      t.f.push(bytes.subarray(cut));
      expect(t.lines.map((l) => (JSON.parse(l) as { method: string }).method)).toEqual(['a', 'b', 'c']);
    }
  });

  it('keeps a multi-byte UTF-8 character split between chunks intact', () => {
    const text = 'héllo ✓ 🚀 ok';
    const bytes = Buffer.from(`${JSON.stringify({ jsonrpc: '2.0', method: 'm', params: { text } })}\n`);
    for (let cut = 1; cut < bytes.length; cut++) {
      const t = framer();
      // one byte at a time around the cut, to split every character somewhere
      t.f.push(bytes.subarray(0, cut));
      for (let i = cut; i < bytes.length; i++) t.f.push(bytes.subarray(i, i + 1));
      expect(t.lines).toHaveLength(1);
      expect((JSON.parse(t.lines[0] as string) as { params: { text: string } }).params.text).toBe(text);
    }
  });

  it('refuses a line over the limit without buffering it, then reads on', () => {
    const t = framer(64);
    const big = `{"jsonrpc":"2.0","method":"${'x'.repeat(200)}"}`;
    t.f.push(Buffer.from(big.slice(0, 50)));
    t.f.push(Buffer.from(big.slice(50, 150)));
    t.f.push(Buffer.from(`${big.slice(150)}\n{"jsonrpc":"2.0","method":"ok"}\n`));
    // an oversized line inside a single chunk too
    t.f.push(Buffer.from(`${big}\n{"jsonrpc":"2.0","method":"ok2"}\n`));
    expect(t.oversize).toBe(2);
    expect(t.lines).toEqual(['{"jsonrpc":"2.0","method":"ok"}', '{"jsonrpc":"2.0","method":"ok2"}']);
  });
});

describe('an answer too large to read', () => {
  /** One oversize line fed in chunks of `chunk` bytes through a framer with a 4 KiB limit. */
  const skip = (line: string, chunk: number): OversizeLine => {
    const t = framer(4096);
    const bytes = Buffer.from(`${line}\r\n{"jsonrpc":"2.0","method":"after"}\n`);
    for (let i = 0; i < bytes.length; i += chunk) t.f.push(bytes.subarray(i, i + chunk));
    expect(t.lines).toEqual(['{"jsonrpc":"2.0","method":"after"}']);
    expect(t.skipped).toHaveLength(1);
    return t.skipped[0] as OversizeLine;
  };
  const text = 'x'.repeat(100_000);

  it('is counted, not kept: its size and first and last kilobyte, in any chunking', () => {
    const line = JSON.stringify({ result: { content: [{ type: 'text', text }] }, jsonrpc: '2.0', id: 'kavach-call-7' });
    for (const chunk of [1000, 4096, 65_536, 1 << 20]) {
      const got = skip(line, chunk);
      expect(got.bytes).toBe(Buffer.byteLength(line) + 1); // with the \r
      expect(got.head).toBe(line.slice(0, 1024));
      expect(got.tail).toBe(`${line.slice(-1023)}\r`);
    }
  });

  it('finds the id of a response whether it leads (Python SDK) or trails (TypeScript SDK), or that it is not one', () => {
    const cases: [unknown, string | number | undefined][] = [
      [{ result: { content: [{ type: 'text', text }] }, jsonrpc: '2.0', id: 'kavach-call-7' }, 'kavach-call-7'],
      [{ jsonrpc: '2.0', id: 12, result: { content: [{ type: 'text', text }] } }, 12],
      [{ jsonrpc: '2.0', id: 'e"1', error: { code: -1, message: text } }, 'e"1'],
      [{ error: { code: -1, message: text }, id: 3, jsonrpc: '2.0' }, 3],
      // A request or notification from the server: no answer of ours to fail.
      [{ method: 'sampling/createMessage', params: { text }, jsonrpc: '2.0', id: 0 }, undefined],
      [{ jsonrpc: '2.0', id: 5, method: 'x', params: { text } }, undefined],
      [{ method: 'notifications/message', params: { data: text }, jsonrpc: '2.0' }, undefined],
      // An "id" inside the result (as a member or in a string) is not the response's.
      [{ jsonrpc: '2.0', result: { text, id: 'inner' } }, undefined],
      [{ jsonrpc: '2.0', result: { text: `${text}","id":"fake"}` } }, undefined],
      [{ result: { text }, jsonrpc: '2.0', id: 1.5 }, undefined],
    ];
    for (const [message, id] of cases) expect(oversizeAnswerId(skip(JSON.stringify(message), 65_536)), JSON.stringify(id)).toBe(id);
  });
});

describe('message checks', () => {
  it('accepts the four JSON-RPC message kinds', () => {
    for (const m of [
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', _meta: { progressToken: 'p' } } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 'a', result: { content: [] } },
      { jsonrpc: '2.0', id: 2, error: { code: -32601, message: 'no', data: { x: 1 } } },
    ]) {
      expect(decodeLine(JSON.stringify(m))).toEqual({ ok: true, message: m });
    }
  });

  it('refuses what the SDK schema refuses, echoing only a request id', () => {
    const bad: [string, number, string | number | null][] = [
      ['{"jsonrpc":"2.0","method":', -32700, null],
      ['[{"jsonrpc":"2.0","id":1,"method":"a"}]', -32600, null],
      ['{"jsonrpc":"1.0","id":1,"method":"a"}', -32600, 1],
      ['{"jsonrpc":"2.0","id":1.5,"method":"a"}', -32600, null],
      ['{"jsonrpc":"2.0","id":1,"method":"a","extra":true}', -32600, 1],
      ['{"jsonrpc":"2.0","id":1,"method":"a","params":[1]}', -32600, 1],
      ['{"jsonrpc":"2.0","id":1,"method":"a","params":{"_meta":{"progressToken":1.5}}}', -32600, 1],
      ['{"jsonrpc":"2.0","id":1,"method":7}', -32600, 1],
      ['{"jsonrpc":"2.0","id":7,"result":"text"}', -32600, null],
      ['{"jsonrpc":"2.0","id":7,"error":{"code":"x","message":"m"}}', -32600, null],
      ['{"jsonrpc":"2.0","id":7}', -32600, null],
      ['null', -32600, null],
    ];
    for (const [line, code, id] of bad) {
      const d = decodeLine(line);
      expect(d.ok, line).toBe(false);
      if (!d.ok) expect([d.code, d.id], line).toEqual([code, id]);
    }
  });
});

/** What the transport wrote, line by line (every line must be JSON-RPC). */
function collect(stream: PassThrough): () => Record<string, unknown>[] {
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return () =>
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const m = JSON.parse(l) as Record<string, unknown>;
        expect(m.jsonrpc).toBe('2.0');
        return m;
      });
}

describe('LineServerTransport', () => {
  it('delivers messages, answers bad lines per JSON-RPC and writes nothing else', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const written = collect(output);
    const t = new LineServerTransport(input, output, 256);
    const got: JSONRPCMessage[] = [];
    const errors: string[] = [];
    t.onmessage = (m) => void got.push(m);
    t.onerror = (e) => void errors.push(e.message);
    await t.start();
    input.write('{"jsonrpc":"2.0","id":1,"method":"ping"}\nnot json\n{"jsonrpc":"2.0","id":9,"method":"x","params":[]}\n');
    input.write('{"jsonrpc":"2.0","id":3,"result":5}\n');
    input.write(`{"jsonrpc":"2.0","id":4,"method":"${'y'.repeat(300)}"}\n{"jsonrpc":"2.0","method":"notifications/initialized"}\n`);
    await t.send({ jsonrpc: '2.0', id: 1, result: {} });
    await new Promise(setImmediate);
    expect(got).toEqual([
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
    ]);
    const answers = written();
    expect(answers.map((m) => [m.id, (m.error as { code: number } | undefined)?.code])).toEqual([
      [null, -32700],
      [9, -32600],
      [null, -32600],
      [null, -32600],
      [1, undefined],
    ]);
    expect(errors).toHaveLength(4);
    await t.close();
  });

  it('waits for the output to drain before a send settles (backpressure)', async () => {
    let release: (() => void) | undefined;
    const output = new Writable({
      highWaterMark: 8,
      write(_chunk, _enc, cb) {
        release = cb;
      },
    });
    const t = new LineServerTransport(new PassThrough(), output);
    await t.start();
    let settled = false;
    const sent = t
      .send({ jsonrpc: '2.0', method: 'notifications/message', params: { data: 'x'.repeat(100) } })
      .then(() => (settled = true));
    await new Promise(setImmediate);
    expect(settled).toBe(false);
    release?.();
    await sent;
    expect(settled).toBe(true);
  });

  it('answers a request with an internal error when its answer cannot be encoded, instead of leaving it unanswered', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let text = '';
    output.on('data', (c: Buffer) => (text += c.toString('utf8')));
    const t = new LineServerTransport(input, output);
    await t.start();
    const deep = nestedTooDeep();
    // What the SDK Server sends for, say, resources/list when one upstream's entry is nested that deep.
    await t.send({ jsonrpc: '2.0', id: 5, result: { resources: [{ uri: 'res://x', name: 'x', _meta: { deep } }] } });
    await expect(t.send({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: deep } })).rejects.toThrow();
    await new Promise(setImmediate);
    const lines = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toMatchObject([{ jsonrpc: '2.0', id: 5, error: { code: ErrorCode.InternalError } }]);
    await t.close();
  });
});

describe('ChildProcessTransport', () => {
  const SERVER = `
    const rl = require('node:readline').createInterface({ input: process.stdin });
    process.stdout.write('this is not json\\n');
    rl.on('line', (l) => {
      const m = JSON.parse(l);
      const result = { env: process.env.KAVACH_T, cwd: process.cwd(), home: process.env.HOME !== undefined, secret: process.env.KAVACH_T_SECRET ?? null };
      process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }) + '\\n');
    });`;

  it('spawns with the configured env and cwd, skips non-JSON output, and stops the child on close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kavach-line-'));
    process.env.KAVACH_T_SECRET = 'not inherited';
    try {
      const t = new ChildProcessTransport({
        command: process.execPath,
        args: ['-e', SERVER],
        env: { KAVACH_T: 'set' },
        cwd: dir,
        stderr: 'ignore',
      });
      const errors: string[] = [];
      let closed = false;
      const answer = new Promise<JSONRPCMessage>((resolve) => (t.onmessage = (m) => resolve(m)));
      t.onerror = (e) => void errors.push(e.message);
      t.onclose = () => (closed = true);
      await t.start();
      const pid = t.pid;
      expect(pid).toBeGreaterThan(0);
      await t.send({ jsonrpc: '2.0', id: 'k-1', method: 'tools/call', params: { name: 'x' } });
      const m = (await answer) as { id: string; result: Record<string, unknown> };
      expect(m.id).toBe('k-1');
      expect(m.result).toEqual({
        env: 'set',
        cwd: expect.stringContaining('kavach-line-'),
        home: process.env.HOME !== undefined,
        secret: null,
      });
      expect(errors.some((e) => e.includes('malformed'))).toBe(true);
      await t.close();
      expect(closed).toBe(true);
      expect(() => process.kill(pid as number, 0)).toThrow();
      await expect(t.send({ jsonrpc: '2.0', method: 'x' })).rejects.toThrow('Not connected');
    } finally {
      delete process.env.KAVACH_T_SECRET;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an answer over the limit fails only its request, named by its id; the next answer on the same process arrives', async () => {
    const server = `
      const rl = require('node:readline').createInterface({ input: process.stdin });
      rl.on('line', (l) => {
        const m = JSON.parse(l);
        const text = m.params.name === 'big' ? 'x'.repeat(200000) : String(process.pid);
        process.stdout.write(JSON.stringify({ result: { content: [{ type: 'text', text }] }, jsonrpc: '2.0', id: m.id }) + '\\n');
      });`;
    const t = new ChildProcessTransport({ command: process.execPath, args: ['-e', server], stderr: 'ignore', maxLineBytes: 65_536 });
    const got: JSONRPCMessage[] = [];
    const errors: string[] = [];
    t.onmessage = (m) => void got.push(m);
    t.onerror = (e) => void errors.push(e.message);
    await t.start();
    await t.send({ jsonrpc: '2.0', id: 'k-1', method: 'tools/call', params: { name: 'big' } });
    await t.send({ jsonrpc: '2.0', id: 'k-2', method: 'tools/call', params: { name: 'pid' } });
    await until('both answers', () => got.length === 2);
    const [tooLarge, next] = got as [JSONRPCMessage, JSONRPCMessage];
    expect(tooLarge).toMatchObject({ id: 'k-1', error: { code: ErrorCode.InternalError } });
    expect((tooLarge as { error: { message: string } }).error.message).toMatch(
      /^the answer was 2000\d\d bytes, over the limit of 65536 bytes for one message$/,
    );
    expect(isTooLargeAnswer(tooLarge)).toBe(true);
    expect(next).toMatchObject({ id: 'k-2', result: { content: [{ text: String(t.pid) }] } });
    expect(isTooLargeAnswer(next)).toBe(false);
    // The same error shape from the server itself is not taken for the proxy's.
    expect(isTooLargeAnswer({ ...(tooLarge as object) } as JSONRPCMessage)).toBe(false);
    expect(errors).toEqual([expect.stringContaining('answer to request "k-1"')]);
    await t.close();
  });

  it('a child that dies is reported as closed; one that cannot start fails start()', async () => {
    const t = new ChildProcessTransport({ command: process.execPath, args: ['-e', 'process.exit(3)'], stderr: 'ignore' });
    const closed = new Promise<void>((resolve) => (t.onclose = resolve));
    await t.start();
    await closed;
    expect(t.exit).toEqual({ code: 3, signal: null });
    const missing = new ChildProcessTransport({ command: join(tmpdir(), 'kavach-no-such-binary'), stderr: 'ignore' });
    missing.onerror = () => undefined;
    await expect(missing.start()).rejects.toThrow();
  });
});

describe('plain text results', () => {
  it('the hand check accepts only what CallToolResultSchema accepts', async () => {
    const { CallToolResultSchema } = await import('@modelcontextprotocol/sdk/types.js');
    const { isPlainTextResult } = await import('../../src/mcp-proxy/upstream-call.ts');
    const samples: unknown[] = [
      { content: [{ type: 'text', text: 'hi' }] },
      {
        content: [
          { type: 'text', text: 'hi' },
          { type: 'text', text: '' },
        ],
        isError: true,
      },
      { content: [] },
      { content: [{ type: 'text', text: 5 }] },
      { content: [{ type: 'text' }] },
      { content: [{ type: 'image', data: 'x', mimeType: 'image/png' }] },
      { content: [{ type: 'text', text: 'a', annotations: { priority: 7 } }] },
      { content: [null] },
      { content: 'text' },
      { content: [{ type: 'text', text: 'a' }], isError: 'yes' },
      { content: [{ type: 'text', text: 'a' }], _meta: { progressToken: 1.5 } },
      { content: [{ type: 'text', text: 'a' }], structuredContent: 3 },
      [],
      null,
    ];
    for (const s of samples) {
      if (isPlainTextResult(s)) expect(CallToolResultSchema.safeParse(s).success, JSON.stringify(s)).toBe(true);
    }
    expect(samples.filter((s) => isPlainTextResult(s))).toHaveLength(3);
  });
});

describe('large messages through both transports', () => {
  // Answers each request with the exact line it read, as text.
  const MIRROR = `
    const rl = require('node:readline').createInterface({ input: process.stdin, crlfDelay: Infinity });
    rl.on('line', (l) => {
      const m = JSON.parse(l);
      process.stdout.write(JSON.stringify({ result: { content: [{ type: 'text', text: l }] }, jsonrpc: '2.0', id: m.id }) + '\\n');
    });`;
  const pad = 'p'.repeat(40_000);

  it("forwards a client's large arguments as written, re-encodes them when a key repeats, and relays the answer's bytes", async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const written = collect(output);
    const down = new LineServerTransport(input, output);
    const received: JSONRPCMessage[] = [];
    down.onmessage = (m) => void received.push(m);
    await down.start();
    const up = new ChildProcessTransport({ command: process.execPath, args: ['-e', MIRROR], stderr: 'ignore' });
    const answers: Record<string, unknown>[] = [];
    up.onmessage = (m) => void answers.push(m as Record<string, unknown>);
    await up.start();
    try {
      const plain = `{ "path" : "/tmp/x" , "pad" : "${pad}" }`;
      const repeated = `{"path":"/safe","pad":"${pad}","path":"/etc/passwd"}`;
      // A bare CR is JSON whitespace on the way in and a line end to the server's reader (readline here).
      const smuggled = `{"pad":"${pad}","x":\r{"jsonrpc":"2.0","id":"k-99","method":"tools/call","params":{"name":"delete_everything"}}\r}`;
      for (const [id, args] of [
        [1, plain],
        [2, repeated],
        [3, smuggled],
      ] as const)
        input.write(`{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"fs__read","arguments":${args}}}\n`);
      await until('the calls read', () => received.length === 3);
      for (const m of received as unknown as { id: number; params: { arguments: unknown } }[])
        await up.send({ jsonrpc: '2.0', id: `k-${m.id}`, method: 'tools/call', params: { name: 'read', arguments: m.params.arguments } });
      await until('the answers', () => answers.length === 3);
      const seen = answers.map((a) => ((a.result as { content: { text: string }[] }).content[0] as { text: string }).text);
      expect(seen[0]).toBe(`{"jsonrpc":"2.0","id":"k-1","method":"tools/call","params":{"name":"read","arguments":${plain}}}`);
      // One path reaches the server, the one the gate read (JSON.parse keeps the last).
      expect(seen[1]).toBe(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 'k-2',
          method: 'tools/call',
          params: { name: 'read', arguments: { path: '/etc/passwd', pad } },
        }),
      );
      // The server read one message, the one the gate judged: nothing of its own for the smuggled call.
      const third = JSON.parse(seen[2] as string) as { id: string; params: { arguments: { x: unknown } } };
      expect(third.id).toBe('k-3');
      expect(third.params.arguments.x).toEqual({ jsonrpc: '2.0', id: 'k-99', method: 'tools/call', params: { name: 'delete_everything' } });
      await new Promise((r) => setTimeout(r, 50));
      expect(answers.map((a) => a.id)).toEqual(['k-1', 'k-2', 'k-3']);
      // The answer goes back in pieces (no joined copy), as one line with the client's id.
      const first = answers[0] as { result: object };
      const line = JSON.stringify({ result: first.result, jsonrpc: '2.0', id: 'k-1' });
      keepRawAnswer(first.result, line, 'k-1');
      await down.send({ jsonrpc: '2.0', id: 1, result: first.result as never });
      await new Promise(setImmediate);
      expect(written()).toEqual([{ result: first.result, jsonrpc: '2.0', id: 1 }]);
    } finally {
      await up.close();
      await down.close();
    }
  });
});
