import { chmod, lstat, mkdir, readdir, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ApprovalError } from '../../engine/approvals/types.ts';
import type { Gate } from '../../engine/gate.ts';
import { StoreUnavailableError } from '../../engine/stores.ts';
import type { ApprovalsConfig } from '../config.ts';
import { LineFramer } from '../line-framing.ts';
import { claimedApprover } from './approvers.ts';
import { CONTROL_MAX_LINE_BYTES, controlRequest, socketName, type ControlRequest, type ControlResponse } from './control-protocol.ts';

/** Longest unix socket path every platform takes (macOS: 104 bytes with the terminator). */
const SOCKET_PATH_MAX = 103;

export interface ControlSocket {
  path: string;
  close(): Promise<void>;
}

/**
 * The running proxy's door for `kavach approvals`: a unix socket `<pid>.sock` in
 * `[approvals] socket_dir` (created 0700; the socket is 0600). One socket per process, so several
 * proxies sharing a config (one per client window) each answer for the requests they hold.
 * Sockets left by proxies that died are removed.
 */
export async function serveControlSocket(
  gate: () => Gate,
  approvals: ApprovalsConfig,
  log: (message: string) => void,
): Promise<ControlSocket> {
  const dir = approvals.socketDir;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (!info.isDirectory()) throw new Error(`${dir} is not a directory`);
  // Others must not be able to reach (or replace) the socket: the directory is the owner's alone.
  if ((info.mode & 0o077) !== 0) await chmod(dir, 0o700);
  await removeStale(dir);
  const path = join(dir, socketName(process.pid));
  if (Buffer.byteLength(path) > SOCKET_PATH_MAX)
    throw new Error(`the socket path ${path} is longer than ${SOCKET_PATH_MAX} bytes; set [approvals] socket_dir to a shorter directory`);
  await unlink(path).catch(() => undefined);
  const open = new Set<Socket>();
  const server = createServer((socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    serveConnection(socket, gate, approvals, log);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  server.on('error', (err) => log(`approvals socket: ${err.message}`));
  return {
    path,
    close: () => {
      for (const s of open) s.destroy();
      return closeServer(server, path);
    },
  };
}

function serveConnection(socket: Socket, gate: () => Gate, approvals: ApprovalsConfig, log: (message: string) => void): void {
  let queue = Promise.resolve();
  const reply = (response: ControlResponse): void => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`);
  };
  const framer = new LineFramer(
    (line) => {
      // In order: an answer per request, as sent.
      queue = queue
        .then(() => answer(line, gate(), approvals))
        .then(reply, (err: unknown) => {
          log(`approvals socket: ${String(err)}`);
          reply({ ok: false, code: 'INTERNAL', message: 'internal error' });
        });
    },
    () => {
      reply({ ok: false, code: 'BAD_REQUEST', message: `a request line is limited to ${CONTROL_MAX_LINE_BYTES} bytes` });
      socket.end();
    },
    CONTROL_MAX_LINE_BYTES,
  );
  socket.on('data', (chunk: Buffer) => framer.push(chunk));
  socket.on('error', () => socket.destroy());
}

async function answer(line: string, gate: Gate, approvals: ApprovalsConfig): Promise<ControlResponse> {
  let request: ControlRequest;
  try {
    const parsed = controlRequest.safeParse(JSON.parse(line));
    if (!parsed.success) return { ok: false, code: 'BAD_REQUEST', message: parsed.error.issues[0]?.message ?? 'bad request' };
    request = parsed.data;
  } catch {
    return { ok: false, code: 'BAD_REQUEST', message: 'not JSON' };
  }
  try {
    if (request.op === 'list')
      return { ok: true, requests: await gate.approvals.list(request.status ? { status: request.status as never } : {}) };
    if (request.op === 'get') return { ok: true, request: (await gate.approvals.get(request.id)) ?? null };
    const claimed = claimedApprover(approvals, request.as, request.token);
    if ('refused' in claimed) return { ok: false, code: 'NOT_AN_APPROVER', message: claimed.refused };
    const decided = await gate.approvals.decide(request.id, {
      approver: claimed.approver,
      decision: request.decision,
      ...(request.note !== undefined ? { note: request.note } : {}),
    });
    return { ok: true, request: decided };
  } catch (err) {
    if (err instanceof ApprovalError) return { ok: false, code: err.code, message: err.message };
    if (err instanceof StoreUnavailableError) return { ok: false, code: 'STORE_UNAVAILABLE', message: err.message };
    if (err instanceof TypeError) return { ok: false, code: 'BAD_REQUEST', message: err.message };
    throw err;
  }
}

/** Sockets whose proxy is gone (no such process): a CLI must not keep knocking on them. */
async function removeStale(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = /^(\d+)\.sock$/.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || alive(Number(pid))) continue;
    await unlink(join(dir, name)).catch(() => undefined);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function closeServer(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await unlink(path).catch(() => undefined);
}
