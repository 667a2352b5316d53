import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PLAIN_MIN_CHARS, scanPlainJson } from '../../src/mcp-proxy/plain-json.ts';
import { encodeWithRawArguments, noteRawArguments, rawArgumentsOf } from '../../src/mcp-proxy/raw-arguments.ts';

const PAD = 'x'.repeat(PLAIN_MIN_CHARS);
/** Where the line's arguments are, when it may be forwarded as written. */
const plainArgumentsSpan = (line: string) => scanPlainJson(line)?.arguments;
const call = (args: string, extra = '') =>
  `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"fs__read"${extra},"arguments":${args}}}`;

/** What the proxy would write upstream for the client's `line`, and what it would have re-encoded. */
function forwarded(line: string): { raw: string | undefined; encoded: string } {
  const message = JSON.parse(line) as { params: Record<string, unknown> };
  noteRawArguments(message, line);
  const upstream = {
    jsonrpc: '2.0',
    id: 'kavach-call-1',
    method: 'tools/call',
    params: { name: 'read', arguments: message.params.arguments },
  };
  return { raw: encodeWithRawArguments(upstream)?.join(''), encoded: `${JSON.stringify(upstream)}\n` };
}

describe('forwarding large tools/call arguments as the client wrote them', () => {
  it('finds params.arguments and forwards its text unchanged', () => {
    const args = `{ "path" : "/tmp/a\\/b\\n\\u00e9" , "pad": "${PAD}", "n": [1, -2.5, 1e+21, true, null, {"deep": {}}] }`;
    const line = call(args);
    expect(plainArgumentsSpan(line)).toEqual([line.indexOf('{ "path"'), line.length - 2]);
    const { raw, encoded } = forwarded(line);
    expect(raw).toBe(`{"jsonrpc":"2.0","id":"kavach-call-1","method":"tools/call","params":{"name":"read","arguments":${args}}}\n`);
    expect(JSON.parse(raw as string)).toEqual(JSON.parse(encoded));
  });

  it('keeps the members of params other than the arguments (a _meta) before them', () => {
    const line = call(`{"pad":"${PAD}"}`);
    const message = JSON.parse(line) as { params: { arguments: object } };
    noteRawArguments(message, line);
    const upstream = {
      jsonrpc: '2.0',
      id: 'k',
      method: 'tools/call',
      params: { name: 'read', arguments: message.params.arguments, _meta: { progressToken: 'kavach-1' } },
    };
    const raw = encodeWithRawArguments(upstream)?.join('') as string;
    expect(raw.endsWith(`"_meta":{"progressToken":"kavach-1"},"arguments":{"pad":"${PAD}"}}}\n`)).toBe(true);
    expect(JSON.parse(raw)).toEqual(upstream);
  });

  it('re-encodes when a key repeats anywhere in the line, spelled alike or through escapes', () => {
    const lines = [
      call(`{"path":"/safe","path":"/etc/passwd","pad":"${PAD}"}`),
      call(`{"p\\u0061th":"/safe","path":"/etc/passwd","pad":"${PAD}"}`),
      call(`{"a\\/b":1,"a/b":2,"pad":"${PAD}"}`),
      call(`{"x":[{"k":1,"k":2}],"pad":"${PAD}"}`),
      // Two arguments members, or two params: the parser's pick is not everyone's.
      `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a","arguments":{"path":"/safe","pad":"${PAD}"},"arguments":{"path":"/etc"}}}`,
      `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a","arguments":{"pad":"${PAD}"}},"params":{"name":"a","arguments":{}}}`,
    ];
    for (const line of lines) {
      expect(plainArgumentsSpan(line), line.slice(0, 120)).toBeUndefined();
      expect(forwarded(line).raw).toBeUndefined();
    }
  });

  it('re-encodes numbers the gate read as another value than they spell', () => {
    for (const n of ['9007199254740993', '1e400', '-0', '1.0', '1E3', '0.10', '1000.0000000000000001']) {
      const line = call(`{"amount":${n},"pad":"${PAD}"}`);
      expect(plainArgumentsSpan(line), n).toBeUndefined();
    }
    expect(plainArgumentsSpan(call(`{"amount":1000,"rate":0.1,"big":1e+21,"neg":-5,"pad":"${PAD}"}`))).toBeDefined();
  });

  it('re-encodes arguments with a line break between tokens: forwarded, it would split the message for a line reader', () => {
    // CR and LF are JSON whitespace; a reader that splits lines (a bare CR too: Python, Java, Node
    // readline) would read the smuggled call as a message of its own, never judged by the gate.
    const smuggled = '{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"delete_everything","arguments":{"path":"/"}}}';
    for (const nl of ['\r', '\n', '\r\n']) {
      const line = call(`{"pad":"${PAD}","x":${nl}${smuggled}${nl}}`);
      expect(plainArgumentsSpan(line), JSON.stringify(nl)).toBeUndefined();
      const { raw } = forwarded(line);
      expect(raw).toBeUndefined();
    }
    // Inside a string they can only be escapes, which are fine.
    expect(plainArgumentsSpan(call(`{"pad":"${PAD}","x":"a\\r\\nb"}`))).toBeDefined();
  });

  it('leaves short lines, non-object arguments and other methods alone', () => {
    const small = call('{"path":"/tmp"}');
    const m = JSON.parse(small) as { params: { arguments: object } };
    noteRawArguments(m, small);
    expect(rawArgumentsOf(m.params.arguments)).toBeUndefined();
    expect(plainArgumentsSpan(call(`["${PAD}"]`))).toBeUndefined();
    expect(encodeWithRawArguments({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} })).toBeUndefined();
  });

  it('quotes inside strings (escaped, or after an escaped backslash) do not end them early', () => {
    const args = `{"a":"say \\"}\\" ok","b":"c:\\\\","c":"\\\\\\"{","pad":"${PAD}"}`;
    const line = call(args);
    const span = plainArgumentsSpan(line) as [number, number];
    expect(line.slice(span[0], span[1])).toBe(args);
  });

  it('property: what goes upstream parses to what the gate judged, raw or re-encoded', () => {
    const key = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('path', 'a/b', 'a\\/b', 'é', '"', '\\'));
    const leaf = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.constant(null),
    );
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        leaf,
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(key, tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    // Texts a client might write: compact, spaced, with escapes and number spellings of its own.
    const spelling = fc.constantFrom(
      (s: string) => s,
      (s: string) => s.replace(/,/g, ' , ').replace(/:/g, ' : '),
      (s: string) => s.replace(/\//g, '\\/'),
      (s: string) => s.replace(/é/g, '\\u00e9'),
      (s: string) => s.replace(/(\d)e\+/g, '$1E+'),
      (s: string) => s.replace(/"path":/, '"path":"dup","path":'),
      (s: string) => s.replace(/,/g, ',\r\n').replace(/:\[/g, ':\r['),
    );
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 6 }), spelling, (args, respell) => {
        const text = respell(JSON.stringify({ ...args, pad: PAD }));
        let line: string;
        try {
          line = call(text);
          JSON.parse(line);
        } catch {
          return; // a respelling that is not JSON
        }
        const { raw, encoded } = forwarded(line);
        if (raw !== undefined) expect(JSON.parse(raw)).toEqual(JSON.parse(encoded));
        // And where it was kept, no reader can tell a key apart from another: none repeats.
        if (raw !== undefined) expect(text.includes('"path":"dup","path":')).toBe(false);
        // Nor does a line break outside its strings reach a reader that splits lines.
        if (raw !== undefined) expect(raw.slice(0, -1)).not.toMatch(/[\r\n]/);
      }),
      { numRuns: 400 },
    );
  });
});
