import { readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { ApprovalRequest } from '../../engine/approvals/types.ts';
import { LineFramer } from '../line-framing.ts';
import type { ControlRequest, ControlResponse } from './control-protocol.ts';

/** A running proxy's socket, reached: one request, one answer. */
export interface ControlConnection {
  path: string;
  ask(request: ControlRequest): Promise<ControlResponse>;
  close(): void;
}

const ANSWER_TIMEOUT_MS = 30_000;

/**
 * Every running proxy with a socket in `dir` (sockets nobody listens on are skipped). Several
 * proxies can share one config: each holds its own requests, unless they share Redis.
 */
export async function connectAll(dir: string): Promise<ControlConnection[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^\d+\.sock$/.test(n)).sort();
  } catch {
    return [];
  }
  const found = await Promise.all(names.map((n) => connectOne(join(dir, n)).catch(() => undefined)));
  return found.filter((c): c is ControlConnection => c !== undefined);
}

function connectOne(path: string): Promise<ControlConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const waiting: { resolve(r: ControlResponse): void; reject(e: Error): void }[] = [];
    const failAll = (err: Error): void => {
      for (const w of waiting.splice(0)) w.reject(err);
    };
    const framer = new LineFramer(
      (line) => {
        const next = waiting.shift();
        try {
          next?.resolve(JSON.parse(line) as ControlResponse);
        } catch {
          next?.reject(new Error(`${path}: the proxy answered something that is not JSON`));
        }
      },
      () => failAll(new Error(`${path}: the proxy's answer is too large`)),
      64 * 1024 * 1024,
    );
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.once('error', (err) => {
      reject(err);
      failAll(err);
    });
    socket.on('close', () => failAll(new Error(`${path}: the proxy closed the connection`)));
    socket.once('connect', () => {
      resolve({
        path,
        ask(request) {
          return new Promise<ControlResponse>((res, rej) => {
            const timer = setTimeout(() => rej(new Error(`${path}: no answer within ${ANSWER_TIMEOUT_MS / 1000}s`)), ANSWER_TIMEOUT_MS);
            waiting.push({
              resolve: (r) => {
                clearTimeout(timer);
                res(r);
              },
              reject: (e) => {
                clearTimeout(timer);
                rej(e);
              },
            });
            socket.write(`${JSON.stringify(request)}\n`);
          });
        },
        close: () => socket.end(),
      });
    });
  });
}

/** The request(s) an answer carries, typed for the CLI (the proxy built them from ApprovalRequest). */
export function requestsOf(response: ControlResponse): ApprovalRequest[] {
  if (!response.ok) return [];
  if ('requests' in response) return response.requests as ApprovalRequest[];
  return response.request === null ? [] : [response.request as ApprovalRequest];
}
