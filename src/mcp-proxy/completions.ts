import { CompleteResultSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { relayed } from './meta.ts';
import type { PromptCatalogue } from './prompts.ts';
import type { ProxyShared } from './proxy-state.ts';
import type { ResourceRouter } from './resource-router.ts';

export interface CompleteParams {
  ref: { type: string; name?: string; uri?: string };
  _meta?: Record<string, unknown>;
  [k: string]: unknown;
}

/**
 * `completion/complete`, to the server whose prompt or resource the reference names (a prompt by
 * its exposed name, a resource by the URI or template that server listed). Not gated: it reads
 * nothing and runs nothing. A reference no server owns completes to nothing.
 */
export async function complete(
  shared: ProxyShared,
  prompts: PromptCatalogue,
  resources: ResourceRouter,
  params: CompleteParams,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  await shared.pool.ready;
  const ref = params.ref;
  if (ref.type === 'ref/prompt') {
    const entry = prompts.get(ref.name ?? '');
    if (!entry) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${ref.name}`);
    const client = shared.pool.clientOf(entry.upstream);
    return relayed({ ...params, ref: { ...ref, name: entry.prompt.name } }, undefined, (forwarded) =>
      client.request({ method: 'completion/complete', params: forwarded }, CompleteResultSchema, { signal }),
    );
  }
  const owner = resources.listedOwner(ref.uri ?? '');
  if (!owner) return { completion: { values: [], hasMore: false } };
  const client = shared.pool.clientOf(owner);
  return relayed(params, undefined, (forwarded) =>
    client.request({ method: 'completion/complete', params: forwarded }, CompleteResultSchema, { signal }),
  );
}
