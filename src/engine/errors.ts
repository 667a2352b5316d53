import type { Verdict } from './verdict.ts';

/** Base of every error the project throws on purpose: each carries a stable `code`. */
export class KavachError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A policy (or invariant) source that does not load. `path` names the bad field. */
export class PolicyError extends KavachError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('POLICY_INVALID', path ? `${path}: ${message}` : message);
    this.path = path;
  }
}

/** A configuration file that does not load. `path` names the bad field. */
export class ConfigError extends KavachError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('CONFIG_INVALID', path ? `${path}: ${message}` : message);
    this.path = path;
  }
}

export class RefusedError extends KavachError {
  readonly verdict: Extract<Verdict, { kind: 'refuse' }>;
  constructor(verdict: Extract<Verdict, { kind: 'refuse' }>) {
    super(verdict.code, `[${verdict.code}] ${verdict.reason}`);
    this.verdict = verdict;
  }
}

export class InvalidatedError extends KavachError {
  readonly verdict: Extract<Verdict, { kind: 'invalidate' }>;
  constructor(verdict: Extract<Verdict, { kind: 'invalidate' }>) {
    super('SESSION_INVALID', `[invalidated] ${verdict.reason}`);
    this.verdict = verdict;
  }
}
