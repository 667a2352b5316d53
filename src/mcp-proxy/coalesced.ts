/**
 * Runs a task on demand, one run at a time: a trigger during a run queues one more run (however
 * many triggers come), which starts after the current one ends, so the last trigger is always
 * followed by a whole run. A failed run is reported and does not cancel the queued one.
 */
export class Coalesced {
  private running: Promise<void> | undefined;
  private queued = false;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Resolves when no run is left that started before this trigger or was queued by it. */
  trigger(): Promise<void> {
    if (this.running) {
      this.queued = true;
      return this.running;
    }
    this.running = this.loop();
    return this.running;
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.queued = false;
        try {
          await this.task();
        } catch (err) {
          this.onError(err);
        }
      } while (this.queued);
    } finally {
      this.running = undefined;
    }
  }
}
