import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { PermitError } from '../crypto/errors.ts';
import type { PermitClaims } from '../crypto/permit-token.ts';
import type { PermitVerifier } from '../crypto/permit-verifier.ts';
import { PERMIT_META_KEY } from './meta.ts';

/** What a tool handler of the SDK's `McpServer` receives as its last argument (the part used here). */
export interface PermitCarrier {
  _meta?: Record<string, unknown>;
}

export interface RequirePermitOptions {
  verifier: PermitVerifier;
  /** This server's name in the proxy config (`[servers.<name>]`): the permit's `aud`. */
  audience: string;
  /** The tool's name as this server registers it; the permit must be for `<audience>.<tool>`. */
  tool: string;
  /** Told about every refused call (e.g. to log it). */
  onRefused?: (error: PermitError | Error) => void;
}

/** A verified permit, as handed to the wrapped handler. */
export interface PermitExtra {
  permit: PermitClaims;
}

/**
 * Wraps an `McpServer` tool handler so it runs only with a Kavach permit that verifies for this
 * server, this tool and exactly these arguments (signature, expiry, audience, action, arguments
 * hash, and single use when the verifier has a replay store). Anything else is a tool error
 * that says why; the handler never runs.
 *
 * The permit binds the arguments as the proxy forwarded them. A schema that adds defaults or
 * transforms values hands the handler different arguments, whose hash does not match: such
 * calls are refused (fail closed), so keep defaults out of guarded tools' schemas.
 */
export function requirePermit<Args extends Record<string, unknown>, Extra extends PermitCarrier, R extends CallToolResult>(
  handler: (args: Args, extra: Extra & PermitExtra) => R | Promise<R>,
  opts: RequirePermitOptions,
): (args: Args, extra: Extra) => Promise<CallToolResult> {
  if (!opts?.verifier || typeof opts.audience !== 'string' || opts.audience === '' || typeof opts.tool !== 'string' || opts.tool === '') {
    throw new TypeError('requirePermit needs { verifier, audience, tool }');
  }
  const action = `${opts.audience}.${opts.tool}`;
  return async (args: Args, extra: Extra) => {
    const token = extra?._meta?.[PERMIT_META_KEY];
    let claims: PermitClaims;
    try {
      if (typeof token !== 'string')
        throw new PermitError('BAD_FORMAT', `no permit in _meta["${PERMIT_META_KEY}"]; call this tool through the Kavach proxy`);
      // The audience is checked inside verify, before the replay store burns the permit's id.
      claims = await opts.verifier.verify(token, { action, args: args ?? {}, audience: opts.audience });
    } catch (err) {
      opts.onRefused?.(err as Error);
      const code = err instanceof PermitError ? err.code : 'VERIFY_FAILED';
      const message = err instanceof Error ? err.message : String(err);
      return { isError: true, content: [{ type: 'text', text: `Permit refused [${code}]: ${message}` }] };
    }
    return handler(args, { ...extra, permit: claims });
  };
}
