/**
 * One signing thread of a SigningPool. It holds the secret keys the pool sent it (once per key,
 * by transfer) and signs envelopes on request, so ML-DSA's milliseconds of work never run on the
 * caller's event loop. Messages are defined in signing-pool.ts.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { KeyPair } from './keys.ts';
import { signEnvelopeBytes, type SignatureMode } from './signatures.ts';

type Request =
  | { t: 'key'; kid: string; secret: Uint8Array }
  | { t: 'forget'; kid: string }
  | { t: 'sign'; id: number; kid: string; mode: SignatureMode; domain: string; message: Uint8Array; crash?: boolean };

const port = parentPort;
if (!port) throw new Error('signing-worker.ts runs only as a worker thread');

const keys = new Map<string, KeyPair>();

// On Linux, pid 0 means this thread alone (the pool passes 0 on other systems).
const nice = (workerData as { nice?: number } | null)?.nice ?? 0;
if (nice > 0) {
  try {
    setPriority(0, nice);
  } catch {
    // Not allowed here: sign at normal priority.
  }
}

port.on('message', (msg: Request) => {
  switch (msg.t) {
    case 'key': {
      const kp = KeyPair.fromSecretBytes(msg.secret);
      msg.secret.fill(0);
      keys.set(kp.kid, kp);
      return;
    }
    case 'forget':
      keys.delete(msg.kid);
      return;
    case 'sign': {
      let envelope: Uint8Array;
      try {
        const kp = keys.get(msg.kid);
        if (!kp) throw new Error(`signing worker has no key ${msg.kid}`);
        envelope = signEnvelopeBytes(kp, msg.mode, msg.domain, msg.message);
      } catch (err) {
        port.postMessage({ t: 'err', id: msg.id, message: (err as Error)?.message ?? String(err) });
        return;
      }
      // Test hook: die after the work and before the answer, the way an OOM or a native fault would.
      if (msg.crash) throw new Error('signing worker crashed (test hook)');
      port.postMessage({ t: 'ok', id: msg.id, envelope }, [envelope.buffer as ArrayBuffer]);
    }
  }
});

port.postMessage({ t: 'ready' });
