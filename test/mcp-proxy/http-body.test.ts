// readBody: the POST body of the HTTP mode, bounded; a request cut short rejects, a whole one that
// then closes (as every request does) resolves with its bytes.
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { readBody } from '../../src/mcp-proxy/http-body.ts';

function request(contentLength?: number): IncomingMessage & EventEmitter {
  const req = new EventEmitter() as IncomingMessage & EventEmitter;
  Object.assign(req, { headers: contentLength === undefined ? {} : { 'content-length': String(contentLength) }, resume: () => req });
  return req;
}

describe('readBody', () => {
  it('a whole body resolves with its bytes, and the close that follows changes nothing', async () => {
    const req = request();
    const read = readBody(req);
    req.emit('data', Buffer.from('{"a":'));
    req.emit('data', Buffer.from('1}'));
    req.emit('end');
    req.emit('close');
    const got = await read;
    expect(got.kind === 'ok' && got.bytes.toString()).toBe('{"a":1}');
  });

  it('a body is whole once its declared length is in, before the stream ends', async () => {
    const req = request(7);
    let got: unknown;
    void readBody(req).then((r) => (got = r));
    req.emit('data', Buffer.from('{"a":'));
    await Promise.resolve();
    expect(got).toBeUndefined();
    req.emit('data', Buffer.from('1}'));
    await Promise.resolve();
    expect(got).toEqual({ kind: 'ok', bytes: Buffer.from('{"a":1}') });
    // The end and close that follow change nothing (and reject nothing).
    req.emit('end');
    req.emit('close');
  });

  it('a client gone mid-body rejects the read', async () => {
    const req = request();
    const read = readBody(req);
    req.emit('data', Buffer.from('{"a":'));
    req.emit('close');
    await expect(read).rejects.toThrow('the request was aborted');
  });

  it('a body over the limit is too large: drained when it ended, not when it went past the drain limit', async () => {
    const small = request();
    const drained = readBody(small, 4, 16);
    small.emit('data', Buffer.from('123456'));
    small.emit('end');
    small.emit('close');
    expect(await drained).toEqual({ kind: 'too-large', drained: true });

    const huge = request();
    const cut = readBody(huge, 4, 8);
    huge.emit('data', Buffer.from('123456789'));
    huge.emit('close');
    expect(await cut).toEqual({ kind: 'too-large', drained: false });
    expect(await readBody(request(100), 4, 8)).toEqual({ kind: 'too-large', drained: false });
  });
});
