import { ErrorCode, GetPromptResultSchema, McpError, type Prompt } from '@modelcontextprotocol/sdk/types.js';
import type { PermitVerdict } from '../engine/verdict.ts';
import type { PrincipalConfig } from './config.ts';
import { gateRequest, listFilter } from './gated-request.ts';
import { relayed } from './meta.ts';
import type { ProxySession, ProxyShared } from './proxy-state.ts';
import { exposeNames, type UpstreamName } from './tool-names.ts';
import { screenedRequest } from './screening.ts';
import type { Upstream } from './upstream.ts';

export interface ExposedPrompt {
  upstream: Upstream;
  prompt: Prompt;
}

/** Every upstream's prompts under `<server>__<prompt>` names; with `gate_resources`, gated like resources. */
export class PromptCatalogue {
  private prompts = new Map<string, ExposedPrompt>();

  constructor(private readonly shared: ProxyShared) {}

  get(name: string): ExposedPrompt | undefined {
    return this.prompts.get(name);
  }

  /** An upstream's prompt list changed: the exposed names are computed afresh. */
  rebuild(): void {
    const names: UpstreamName[] = [];
    const byKey = new Map<string, ExposedPrompt>();
    for (const u of this.shared.pool.upstreams) {
      for (const prompt of u.prompts) {
        names.push({ server: u.name, name: prompt.name });
        byKey.set(`${u.name}\0${prompt.name}`, { upstream: u, prompt });
      }
    }
    const next = new Map<string, ExposedPrompt>();
    for (const [exposed, n] of exposeNames(names)) {
      const found = byKey.get(`${n.server}\0${n.name}`);
      if (found) next.set(exposed, found);
    }
    this.prompts = next;
  }

  /** With `gate_resources`, only the prompts the principal could be permitted to get. */
  async list(principal: PrincipalConfig): Promise<Prompt[]> {
    await this.shared.pool.ready;
    const filter = listFilter(this.shared, principal);
    const out: Prompt[] = [];
    for (const [name, p] of this.prompts) {
      if (filter && !filter(`${p.upstream.name}.prompts/get`, p.prompt.name)) continue;
      out.push({ ...p.prompt, name });
    }
    return out;
  }

  async getPrompt(
    session: ProxySession,
    params: { name: string; arguments?: Record<string, string>; _meta?: Record<string, unknown> },
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    await this.shared.pool.ready;
    const entry = this.prompts.get(params.name);
    if (!entry) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${params.name}`);
    let verdict: PermitVerdict | undefined;
    if (this.shared.config.gate.gateResources)
      verdict = await gateRequest(this.shared, session, entry.upstream.name, 'prompts/get', entry.prompt.name, { ...params.arguments });
    const client = this.shared.pool.clientOf(entry.upstream);
    const send = () =>
      relayed({ ...params, name: entry.prompt.name }, verdict, (forwarded) =>
        client.request({ method: 'prompts/get', params: forwarded }, GetPromptResultSchema, { signal }),
      );
    if (verdict === undefined) return send();
    // Gated: the prompt's messages (and an error's text) are screened under the action the gate judged.
    return screenedRequest(this.shared.gate, `${entry.upstream.name}.prompts/get`, verdict.evaluationId, 'the prompt', send);
  }
}
