import { describe, expect, it } from 'vitest';
import { RESTART_POLICY, RestartBackoff } from '../../src/mcp-proxy/restart-backoff.ts';

/** A backoff on a clock the test moves. */
function backoff(): { b: RestartBackoff; advance: (ms: number) => void } {
  let now = 1_000_000;
  return { b: new RestartBackoff(RESTART_POLICY, () => now), advance: (ms) => void (now += ms) };
}

describe('upstream restart backoff', () => {
  it('waits longer after each start that fails, up to 10 s', () => {
    const { b } = backoff();
    expect(Array.from({ length: 8 }, () => b.down(0))).toEqual([500, 1_000, 2_000, 5_000, 10_000, 10_000, 10_000, 10_000]);
  });

  it('keeps backing off a server that dies soon after each start, answering nothing', () => {
    const { b, advance } = backoff();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      b.up();
      advance(2_000);
      delays.push(b.down(2));
    }
    expect(delays).toEqual([500, 1_000, 2_000, 5_000, 10_000]);
  });

  it('starts over for a server killed every 20 s: each crash costs 0.5 s', () => {
    const { b, advance } = backoff();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      b.up();
      advance(20_000);
      delays.push(b.down(0));
      advance(delays.at(-1) as number);
    }
    expect(delays).toEqual([500, 500, 500, 500, 500, 500]);
  });

  it('starts over once a server answered 3 calls since it came up, however soon it then dies', () => {
    const { b, advance } = backoff();
    expect([b.down(0), b.down(0), b.down(0)]).toEqual([500, 1_000, 2_000]);
    b.up();
    advance(100);
    expect(b.down(3)).toBe(500);
    b.up();
    expect(b.down(2)).toBe(1_000);
  });

  it('a failed start right after a healthy run does not count the run again', () => {
    const { b, advance } = backoff();
    b.up();
    advance(60_000);
    expect(b.down(0)).toBe(500);
    // The restart fails: no up() in between, so the streak goes on.
    expect(b.down(0)).toBe(1_000);
  });
});
