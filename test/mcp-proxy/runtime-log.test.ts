import { afterEach, describe, expect, it, vi } from 'vitest';
import { log } from '../../src/mcp-proxy/runtime.ts';

describe("the proxy's stderr log", () => {
  afterEach(() => vi.restoreAllMocks());

  it('escapes what an upstream chose (a tool name with terminal escapes, bidi overrides): it cannot act on the terminal', () => {
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    // As pinning logs a held tool: the name is the server's, and the scan holds it for these very characters.
    log(
      'tool fx.read\u001b[2J\u001b]0;owned\u0007\u202eevil\r\nkavach mcp: forged line was seen for the first time with a suspect definition',
    );
    expect(written).toHaveLength(1);
    const line = written[0] as string;
    expect(line).toMatch(/^kavach mcp: tool fx\.read\\u001b\[2J\\u001b\]0;owned\\u0007\\u202eevil\\u000d\\u000akavach mcp: forged line/);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
  });
});
