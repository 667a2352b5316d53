// `kavach/mcp`: the MCP proxy (as a library) and the helper for servers that verify its permits.
export { requirePermit, type RequirePermitOptions, type PermitExtra, type PermitCarrier } from './require-permit.ts';
export { loadConfig, parseConfig, parseConfigText, type ProxyConfig, type ServerConfig, type PrincipalConfig } from './config.ts';
export { exposeNames, TOOL_NAME } from './tool-names.ts';
export { startRuntime, type ProxyRuntime } from './runtime.ts';
export { runProxy } from './main.ts';
export { PERMIT_META_KEY, VERDICT_META_KEY, OBSERVED_META_KEY } from './meta.ts';
export type { ProxyRefusal } from './refusals.ts';
/** What the proxy records after each forwarded call: the audit log's record, one type everywhere. */
export type { OutcomeRecord } from '../audit/record.ts';
