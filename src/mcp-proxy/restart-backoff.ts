/** How an upstream that fails is restarted (docs/proxy-reliability.md says why these numbers). */
export interface RestartPolicy {
  /** Waits before each restart of one outage streak; the last repeats. */
  delaysMs: readonly number[];
  /** A server up this long has recovered: its next failure starts the waits over. */
  healthyAfterMs: number;
  /** ...and so has one that answered this many calls since it came up. */
  healthyAfterCalls: number;
}

/**
 * The default: quick first retries, capped at 10 s (a server down longer costs each caller one
 * UPSTREAM_UNAVAILABLE, not a longer outage), and a server counts as recovered after 10 s up or
 * 3 answered calls, so one that is killed every 20 s comes back in 0.5 s each time.
 */
export const RESTART_POLICY: RestartPolicy = {
  delaysMs: [500, 1_000, 2_000, 5_000, 10_000],
  healthyAfterMs: 10_000,
  healthyAfterCalls: 3,
};

/**
 * The restart schedule of one upstream: waits grow while starts keep failing (or the server dies
 * soon after each start, answering nothing), and start over once it has shown itself healthy.
 */
export class RestartBackoff {
  /** Failures since the server last counted as healthy. */
  private failures = 0;
  private upSince: number | undefined;

  constructor(
    private readonly policy: RestartPolicy = RESTART_POLICY,
    private readonly now: () => number = Date.now,
  ) {}

  /** The server is up (connected and listed). */
  up(): void {
    this.upSince = this.now();
  }

  /**
   * The server went down, or a start failed: how long to wait before the next start.
   * `answered`: calls it answered since it came up.
   */
  down(answered: number): number {
    const upSince = this.upSince;
    this.upSince = undefined;
    if (upSince !== undefined && (this.now() - upSince >= this.policy.healthyAfterMs || answered >= this.policy.healthyAfterCalls))
      this.failures = 0;
    const delays = this.policy.delaysMs;
    const delay = delays[Math.min(this.failures, delays.length - 1)] ?? 0;
    this.failures++;
    return delay;
  }
}
