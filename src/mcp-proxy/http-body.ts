import type { IncomingMessage } from 'node:http';

/** The largest request body the HTTP mode takes. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
/**
 * How much of a body over the limit is read and thrown away so the connection stays usable for
 * the client's next request (keep-alive); past this the connection is closed instead.
 */
export const MAX_DRAIN_BYTES = 4 * MAX_BODY_BYTES;

/**
 * A POST body: its bytes, or `too-large` (answer 413). `drained` says whether the whole body
 * was read: when it was not, the rest is still on the wire and the connection must close, else
 * the next request on it would be read from the middle of this body.
 */
export type BodyRead = { kind: 'ok'; bytes: Buffer } | { kind: 'too-large'; drained: boolean };

export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES, drainLimit = MAX_DRAIN_BYTES): Promise<BodyRead> {
  const declared = Number(req.headers['content-length']);
  if (declared > drainLimit) {
    req.resume();
    return Promise.resolve({ kind: 'too-large', drained: false });
  }
  return new Promise<BodyRead>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = declared > limit;
    let ended = false;
    const whole = (): BodyRead => ({ kind: 'ok', bytes: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) });
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) over = true;
      if (!over) {
        chunks.push(chunk);
        // Every declared byte is here (the parser never passes on more): the body is whole now,
        // a turn before the stream gets round to its 'end'.
        if (size === declared) {
          ended = true;
          resolve(whole());
        }
        return;
      }
      chunks.length = 0;
      if (size > drainLimit) {
        req.off('data', onData);
        resolve({ kind: 'too-large', drained: false });
      }
    };
    req.on('data', onData);
    req.once('end', () => {
      if (ended) return;
      ended = true;
      if (over) resolve({ kind: 'too-large', drained: true });
      else resolve(whole());
    });
    req.once('error', reject);
    // A client that goes away mid-body: nothing to answer. Every request closes, so the error
    // (whose stack trace costs more than the rest of the read) is made only for one cut short.
    req.once('close', () => {
      if (!ended) reject(new Error('the request was aborted'));
    });
  });
}

/** The refusal of a body over the limit, as a JSON-RPC error; closes the connection when the body was not drained. */
export function tooLargeHeaders(drained: boolean): Record<string, string> {
  return drained ? {} : { connection: 'close' };
}
