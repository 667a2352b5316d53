import { spawn, type ChildProcess, type IOType } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { decodeLine, encodeMessage, LineFramer, MAX_LINE_BYTES, oversizeAnswerId, type OversizeLine } from './line-framing.ts';
import { noteLine, rawAnswer } from './raw-answer.ts';
import { encodeWithRawArguments, noteRawArguments } from './raw-arguments.ts';

const SENT: Promise<void> = Promise.resolve();
/** Pieces of a message shorter than this are joined and written at once. */
const WRITEV_MIN_CHARS = 16 * 1024;

/** One write per message; the promise settles when the stream took it (or drained: backpressure). */
function writeLine(stream: Writable, message: JSONRPCMessage): Promise<void> {
  if (stream.destroyed || !stream.writable) return Promise.reject(new Error('Not connected'));
  let line: string;
  try {
    line = encodeMessage(message);
  } catch (err) {
    // A send fails by its promise, never by throwing (nesting JSON.stringify cannot take).
    return Promise.reject(err);
  }
  return write(stream, line);
}

function write(stream: Writable, line: string): Promise<void> {
  if (stream.write(line)) return SENT;
  return new Promise((resolve) => stream.once('drain', resolve));
}

/**
 * One message in pieces, in one system call (writev): joined first, a large line would be
 * copied once more (and V8 allocates every string over 128 KiB a page mapping of its own).
 */
function writeParts(stream: Writable, parts: readonly string[]): Promise<void> {
  let chars = 0;
  for (const part of parts) chars += part.length;
  // A small message costs less joined than as a vector of writes.
  if (chars < WRITEV_MIN_CHARS) return write(stream, parts.join(''));
  stream.cork();
  let flowing = true;
  for (const part of parts) flowing = stream.write(part);
  stream.uncork();
  if (flowing) return SENT;
  return new Promise((resolve) => stream.once('drain', resolve));
}

/**
 * The downstream side of `kavach mcp` over stdio: newline-delimited JSON-RPC on stdin/stdout,
 * like the SDK's `StdioServerTransport` but without a zod parse and a buffer concat per message.
 * Only JSON-RPC ever reaches stdout: a line that is not JSON gets a -32700 answer, a message of
 * the wrong shape a -32600 (with its id when it had a usable one), a line over the size limit a
 * -32600 with a null id; each is also reported on `onerror`, and reading goes on.
 */
export class LineServerTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  private started = false;
  private readonly framer: LineFramer;

  constructor(
    private readonly input: Readable = process.stdin,
    private readonly output: Writable = process.stdout,
    maxLineBytes: number = MAX_LINE_BYTES,
  ) {
    this.framer = new LineFramer(
      (line) => this.onLine(line),
      () => this.refuse(-32600, `Invalid Request: message over ${maxLineBytes} bytes`, null),
      maxLineBytes,
    );
  }

  private readonly ondata = (chunk: Buffer): void => this.framer.push(chunk);
  private readonly onreaderror = (error: Error): void => this.onerror?.(error);

  async start(): Promise<void> {
    if (this.started) throw new Error('LineServerTransport already started');
    this.started = true;
    this.input.on('data', this.ondata);
    this.input.on('error', this.onreaderror);
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.output.destroyed || !this.output.writable) return Promise.reject(new Error('Not connected'));
    if ('result' in message) {
      const raw = rawAnswer(message.result, message.id);
      if (raw !== undefined) return writeParts(this.output, [...raw, '\n']);
    }
    let line: string;
    try {
      line = encodeMessage(message);
    } catch (err) {
      // JSON.parse takes nesting JSON.stringify cannot (an upstream's answer, relayed): a request
      // still gets an answer, else the client waits for one until its own timeout.
      if (!('id' in message) || 'method' in message) return Promise.reject(err);
      line = encodeMessage({
        jsonrpc: '2.0',
        id: message.id,
        error: { code: -32603, message: `internal error: the answer could not be encoded (${(err as Error).message})` },
      });
    }
    return write(this.output, line);
  }

  async close(): Promise<void> {
    this.input.off('data', this.ondata);
    this.input.off('error', this.onreaderror);
    if (this.input.listenerCount('data') === 0) this.input.pause();
    this.framer.clear();
    this.onclose?.();
  }

  private onLine(line: string): void {
    const decoded = decodeLine(line);
    if (!decoded.ok) {
      this.refuse(decoded.code, decoded.reason, decoded.id);
      return;
    }
    // Large arguments may be forwarded as the client's text (raw-arguments.ts).
    if ('method' in decoded.message && decoded.message.method === 'tools/call') noteRawArguments(decoded.message, line);
    try {
      this.onmessage?.(decoded.message);
    } catch (err) {
      this.onerror?.(err as Error);
    }
  }

  private refuse(code: number, message: string, id: string | number | null): void {
    this.onerror?.(new Error(message));
    // JSON-RPC 2.0 §5: answered with the request's id, or null when it could not be read.
    this.output.write(`${JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } })}\n`);
  }
}

export interface ChildServerParams {
  command: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** What happens to the child's stderr (default: inherited, so its logs land in ours). */
  stderr?: IOType;
  maxLineBytes?: number;
}

/** The answers a transport made up for responses too large to read (see `ChildProcessTransport`). */
const tooLargeAnswers = new WeakSet<object>();

/** Whether `message` is the error a transport put in place of a response over its size limit. */
export function isTooLargeAnswer(message: JSONRPCMessage): boolean {
  return tooLargeAnswers.has(message);
}

/** How a child process ended: its exit code, or the signal that ended it. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * An upstream MCP server as a child process speaking newline-delimited JSON-RPC: the same
 * spawning, environment (the SDK's safe default set plus the configured variables), stderr
 * handling and shutdown sequence (stdin closed, then SIGTERM, then SIGKILL) as the SDK's
 * `StdioClientTransport`, without its per-message zod parse. A line that is not a JSON-RPC
 * message is reported on `onerror` and skipped. A line over the size limit is skipped unread
 * (the SDK closes the connection instead, which would fail every other call on this server): a
 * response among them is replaced by an error answer to its request (`isTooLargeAnswer`), so
 * only that request fails.
 */
export class ChildProcessTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  private child: ChildProcess | undefined;
  private readonly framer: LineFramer;
  private readonly maxLineBytes: number;
  /** How the process ended, once it has. */
  exit: ChildExit | undefined;

  constructor(private readonly params: ChildServerParams) {
    this.maxLineBytes = params.maxLineBytes ?? MAX_LINE_BYTES;
    this.framer = new LineFramer(
      (line) => this.onLine(line),
      (line) => this.onOversize(line),
      this.maxLineBytes,
    );
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  start(): Promise<void> {
    if (this.child) throw new Error('ChildProcessTransport already started');
    return new Promise((resolve, reject) => {
      const child = spawn(this.params.command, this.params.args ?? [], {
        env: { ...getDefaultEnvironment(), ...this.params.env },
        stdio: ['pipe', 'pipe', this.params.stderr ?? 'inherit'],
        shell: false,
        cwd: this.params.cwd,
      });
      this.child = child;
      child.on('error', (error) => {
        reject(error);
        this.onerror?.(error);
      });
      child.on('spawn', () => resolve());
      child.on('close', (code, signal) => {
        this.exit = { code, signal };
        if (this.child === child) this.child = undefined;
        this.onclose?.();
      });
      child.stdin?.on('error', (error) => this.onerror?.(error));
      child.stdout?.on('data', (chunk: Buffer) => this.framer.push(chunk));
      child.stdout?.on('error', (error) => this.onerror?.(error));
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin) return Promise.reject(new Error('Not connected'));
    const parts = encodeWithRawArguments(message);
    return parts === undefined ? writeLine(stdin, message) : writeParts(stdin, parts);
  }

  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    this.framer.clear();
    if (!child) return;
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const within = (ms: number) => Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, ms).unref())]);
    try {
      child.stdin?.end();
    } catch {
      // already gone
    }
    await within(2_000);
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGTERM');
      } catch {
        // already gone
      }
      await within(2_000);
    }
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  private onOversize(line: OversizeLine): void {
    const id = oversizeAnswerId(line);
    const size = `${line.bytes} bytes, over the limit of ${this.maxLineBytes} bytes for one message`;
    if (id === undefined) {
      this.onerror?.(new Error(`the server sent a message of ${size}; it was dropped`));
      return;
    }
    this.onerror?.(new Error(`the server's answer to request ${JSON.stringify(id)} was ${size}; that request fails`));
    const answer: JSONRPCMessage = { jsonrpc: '2.0', id, error: { code: ErrorCode.InternalError, message: `the answer was ${size}` } };
    tooLargeAnswers.add(answer);
    try {
      this.onmessage?.(answer);
    } catch (err) {
      this.onerror?.(err as Error);
    }
  }

  private onLine(line: string): void {
    const decoded = decodeLine(line);
    if (!decoded.ok) {
      this.onerror?.(new Error(`upstream sent a malformed message (${decoded.reason})`));
      return;
    }
    // An answer may be passed on as these very bytes (raw-answer.ts).
    if ('result' in decoded.message) noteLine(decoded.message, line);
    try {
      this.onmessage?.(decoded.message);
    } catch (err) {
      this.onerror?.(err as Error);
    }
  }
}
