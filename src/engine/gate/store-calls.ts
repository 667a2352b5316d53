import { storedGeoIsWellFormed } from '../context.ts';
import type { MaybePromise, SessionState } from '../stores.ts';

/** A store that threw, rejected or answered nonsense: the gate refuses STORE_UNAVAILABLE. */
export class StoreFailure extends Error {}

export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown })?.then === 'function';
}

export function storeError(err: unknown): never {
  throw new StoreFailure((err as Error)?.message ?? String(err), { cause: err });
}

/**
 * Runs a store call and hands its answer to `next`, synchronously when the store answered
 * synchronously (in-memory stores cost no promise hop). Any throw or rejection of the store
 * becomes a StoreFailure (STORE_UNAVAILABLE); errors from `next` pass through unchanged.
 */
export function withStore<T, R>(call: () => MaybePromise<T>, next: (value: T) => MaybePromise<R>, expectAnswer = true): MaybePromise<R> {
  let result: MaybePromise<T>;
  try {
    result = call();
  } catch (err) {
    storeError(err);
  }
  if (isPromise(result)) return result.then((value) => answered(value, next, expectAnswer), storeError);
  return answered(result, next, expectAnswer);
}

function answered<T, R>(value: T, next: (value: T) => MaybePromise<R>, expectAnswer: boolean): MaybePromise<R> {
  // A store that answers with nothing is as broken as one that throws.
  if (expectAnswer && (value === null || typeof value !== 'object')) storeError(new Error('the store gave a malformed answer'));
  return next(value);
}

const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x);
const optString = (x: unknown): boolean => x === undefined || typeof x === 'string';

/**
 * A session store's answer must describe a session, or drift and ownership cannot be judged.
 * (On the hot path: no closures in here, which tsx would name on every call.)
 */
export function wellFormedSession(s: unknown): s is SessionState {
  if (s === null || typeof s !== 'object') return false;
  const v = s as Record<string, unknown>;
  return (
    typeof v.principalId === 'string' &&
    finite(v.startedAt) &&
    finite(v.actionCount) &&
    finite(v.recentCalls) &&
    optString(v.originIp) &&
    optString(v.originDevice) &&
    (v.originGeo === undefined || storedGeoIsWellFormed(v.originGeo))
  );
}
