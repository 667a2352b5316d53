import type { MaybePromise } from './stores.ts';
import type { InvalidationScope } from './verdict.ts';
import { warningSink, type OnWarning } from './warnings.ts';

export interface InvalidationMessage {
  scope: InvalidationScope;
  reason: string;
  /** When the invalidation happened (ms since epoch). */
  at: number;
  /** Id of the gate that published it, so a gate can skip its own messages. */
  origin: string;
}

/** Carries invalidations between gates (replicas). Subscribers must tolerate duplicates. */
export interface InvalidationBus {
  publish(message: InvalidationMessage): MaybePromise<void>;
  /** Returns an unsubscribe function. */
  subscribe(handler: (message: InvalidationMessage) => void): () => void;
  close?(): MaybePromise<void>;
}

/** Delivers to every subscriber in this process: for several gates sharing one process, and tests. */
export class InMemoryBus implements InvalidationBus {
  private readonly handlers = new Set<(message: InvalidationMessage) => void>();
  private readonly warn: OnWarning;

  /**
   * `onWarning` is told when a subscriber throws (the others still get the message). Default:
   * stderr, since a subscriber that failed may have left a session it should have cut.
   */
  constructor(opts: { onWarning?: (message: string) => void } = {}) {
    this.warn = warningSink(opts.onWarning);
  }

  publish(message: InvalidationMessage): void {
    for (const handler of [...this.handlers]) {
      try {
        handler(structuredClone(message));
      } catch (err) {
        this.warn(`invalidation subscriber failed: ${String(err)}`);
      }
    }
  }

  subscribe(handler: (message: InvalidationMessage) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  close(): void {
    this.handlers.clear();
  }
}
