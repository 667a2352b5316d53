import { describe, expect, it } from 'vitest';
import { PLAIN_MIN_CHARS } from '../../src/mcp-proxy/plain-json.ts';
import { forgetRawAnswer, keepRawAnswer, rawAnswer } from '../../src/mcp-proxy/raw-answer.ts';

const PAD = 'x'.repeat(PLAIN_MIN_CHARS);
const result = { content: [{ type: 'text', text: `hello ${PAD}` }] };

describe('forwarding an upstream answer as its bytes', () => {
  it('swaps the id at the end (the SDK order) or the start, and nothing else', () => {
    const a = structuredClone(result);
    keepRawAnswer(a, `{"result":${JSON.stringify(a)},"jsonrpc":"2.0","id":"kavach-call-7"}`, 'kavach-call-7');
    expect(rawAnswer(a, 42)?.join('')).toBe(`{"result":${JSON.stringify(a)},"jsonrpc":"2.0","id":42}`);
    const b = structuredClone(result);
    keepRawAnswer(b, `{"jsonrpc":"2.0","id":"kavach-call-8","result":${JSON.stringify(b)}}`, 'kavach-call-8');
    expect(rawAnswer(b, 'x"y')?.join('')).toBe(`{"jsonrpc":"2.0","id":"x\\"y","result":${JSON.stringify(b)}}`);
    expect(JSON.parse(rawAnswer(b, 'x"y')?.join('') as string)).toEqual({ jsonrpc: '2.0', id: 'x"y', result: b });
  });

  it('keeps nothing when the id is not where it can be found by position, or the line needs a closer look', () => {
    const cases = [
      // The id inside the result, the real one elsewhere.
      `{"result":{"content":[],"id":"kavach-call-9"},"jsonrpc":"2.0","id":"kavach-call-9" }`,
      `{ "jsonrpc":"2.0","id":"kavach-call-9","result":{"content":[]}}`,
      // Escapes could spell Kavach's keys where a substring check does not look.
      `{"result":{"content":[],"_meta":{"\\u0064ev.kavach/verdict":1}},"jsonrpc":"2.0","id":"kavach-call-9"}`,
      `{"result":{"content":[],"_meta":{"dev.kavach/verdict":1},"_meta":{}},"jsonrpc":"2.0","id":"kavach-call-9"}`,
      // A bare CR ends a line for many readers (and an SSE field): the server's own message would follow it.
      `{"result":{"content":[],"x":\r{"jsonrpc":"2.0","method":"notifications/message","params":{}}\r},"jsonrpc":"2.0","id":"kavach-call-9"}`,
      `{"result":{"content":[]}\r,"jsonrpc":"2.0","id":"kavach-call-9"}`,
      // A repeated key: a client that takes the first would read another id, or another result.
      `{"id":"x","result":{"content":[{"type":"text","text":"A"}]},"result":{"content":[]},"jsonrpc":"2.0","id":"kavach-call-9"}`,
      `{"result":{"content":[],"isError":true,"isError":false},"jsonrpc":"2.0","id":"kavach-call-9"}`,
      // A number JSON.parse reads as another value.
      `{"result":{"content":[],"n":1.0},"jsonrpc":"2.0","id":"kavach-call-9"}`,
    ];
    for (const short of cases) {
      // Large, or it would be re-encoded for its size alone.
      const line = short.replace('"content":[', `"pad":"${PAD}","content":[`);
      const r = structuredClone(result);
      keepRawAnswer(r, line, 'kavach-call-9');
      expect(rawAnswer(r, 1), line).toBeUndefined();
    }
    // The control: the same line without the flaw is kept.
    const clean = structuredClone(result);
    keepRawAnswer(clean, `{"result":{"pad":"${PAD}","content":[]},"jsonrpc":"2.0","id":"kavach-call-9"}`, 'kavach-call-9');
    expect(rawAnswer(clean, 1)).toBeDefined();
    // And a small answer is re-encoded whatever it holds.
    const small = { content: [] };
    keepRawAnswer(small, '{"result":{"content":[]},"jsonrpc":"2.0","id":"kavach-call-9"}', 'kavach-call-9');
    expect(rawAnswer(small, 1)).toBeUndefined();
  });

  it('forgets a line once the result changed', () => {
    const r = structuredClone(result);
    keepRawAnswer(r, `{"result":${JSON.stringify(r)},"jsonrpc":"2.0","id":"kavach-call-1"}`, 'kavach-call-1');
    forgetRawAnswer(r);
    expect(rawAnswer(r, 1)).toBeUndefined();
  });
});
