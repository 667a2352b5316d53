import type { ProxyRuntime } from '../runtime.ts';
import { serveControlSocket, type ControlSocket } from './control-socket.ts';
import { serveApprovalsPage, type ApprovalsPage } from './web-server.ts';

/** The out-of-band channels of a running proxy: the socket for `kavach approvals` and the web page. */
export interface ApprovalChannelHandles {
  socket?: ControlSocket;
  page?: ApprovalsPage;
  close(): Promise<void>;
}

export async function startApprovalChannels(runtime: ProxyRuntime, log: (message: string) => void): Promise<ApprovalChannelHandles> {
  const { config } = runtime;
  const handles: ApprovalChannelHandles = { close: async () => undefined };
  const closers: (() => Promise<void>)[] = [];
  try {
    const socket = await serveControlSocket(() => runtime.gate, config.approvals, log);
    handles.socket = socket;
    closers.push(() => socket.close());
  } catch (err) {
    log(`approvals: \`kavach approvals\` cannot reach this proxy: ${(err as Error).message}`);
  }
  if (config.approvals.listen !== undefined) {
    try {
      const page = await serveApprovalsPage(() => runtime.gate, config.approvals, log);
      handles.page = page;
      closers.push(() => page.close());
      runtime.core.approvals.pageUrl = page.url;
      log(`approvals page on ${page.url}`);
    } catch (err) {
      log(`approvals: the approvals page cannot listen on ${config.approvals.listen}: ${(err as Error).message}`);
    }
  }
  handles.close = async () => {
    for (const close of closers.reverse()) await close().catch((err: unknown) => log(`approvals: ${String(err)}`));
  };
  return handles;
}
