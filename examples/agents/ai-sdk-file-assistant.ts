/**
 * `npm run example:ai-sdk`: a Vercel AI SDK file assistant behind Kavach.
 * Offline by default (the AI SDK's MockLanguageModelV3, scripted); with OPENAI_API_KEY set and
 * @ai-sdk/openai installed it uses a real model. The agent reads a file (permitted), tries a
 * write over the size limit, reads five files at once (rate limited), and — after the client's
 * IP changes — makes a call that invalidates the session, then one more that finds it dead.
 * Files live in memory; nothing on disk is touched.
 */
import { generateText, stepCountIs, tool, type LanguageModel, type ModelMessage } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { z } from 'zod';
import { guardTools } from '../../src/adapters/ai-sdk.ts';
import type { Principal } from '../../src/engine/context.ts';
import { drift, modelBanner, setupKavach, type Phase } from './support.ts';

const principal: Principal = { id: 'file-assistant', kind: 'agent', roles: ['docs'] };
const kv = await setupKavach('ai-sdk-file-assistant', 'file-assistant.toml', principal);
const t = kv.transcript;

const files = new Map<string, string>([
  ['/workspace/notes.md', '# Notes\nShip the Q3 report on Friday.'],
  ['/workspace/a.md', 'alpha'],
  ['/workspace/b.md', 'beta'],
  ['/workspace/c.md', 'gamma'],
  ['/workspace/d.md', 'delta'],
  ['/workspace/e.md', 'epsilon'],
]);

const tools = {
  read_file: tool({
    description: 'Read a text file from the workspace.',
    inputSchema: z.object({ path: z.string().describe('absolute path under /workspace') }),
    execute: async ({ path }) => {
      const content = files.get(path) ?? `(no such file: ${path})`;
      t.toolRan('read_file', content);
      return content;
    },
  }),
  write_file: tool({
    description: 'Write a text file in the workspace.',
    inputSchema: z.object({ path: z.string(), content: z.string() }),
    execute: async ({ path, content }) => {
      files.set(path, content);
      const result = `wrote ${content.length} characters to ${path}`;
      t.toolRan('write_file', result);
      return result;
    },
  }),
};

/** The app's per-request context; Kavach reads the principal from it, never from the model. */
interface AppContext {
  principal: Principal;
}

const phases: Phase[] = [
  { title: '1. a permitted read', user: 'What does /workspace/notes.md say?' },
  { title: '2. a write over the limit (2000 characters)', user: 'Write the full 5,000-character draft to /workspace/report.md.' },
  { title: '3. a burst of reads (rate limit: 3 a minute)', user: 'Summarise a.md, b.md, c.md, d.md and e.md.' },
  { title: '4. drift: the next message comes from another IP', user: 'Save "done" to /workspace/status.md.', before: drift },
  { title: '5. the invalidated session', user: 'Hello? Read /workspace/status.md.' },
];

type GenerateResult = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;
const usage = { inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 5, text: 5, reasoning: 0 } };
const calls = (...list: Array<[id: string, name: string, input: unknown]>): GenerateResult => ({
  content: list.map(([toolCallId, toolName, input]) => ({
    type: 'tool-call' as const,
    toolCallId,
    toolName,
    input: JSON.stringify(input),
  })),
  finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
  usage,
  warnings: [],
});
const says = (text: string): GenerateResult => ({
  content: [{ type: 'text', text }],
  finishReason: { unified: 'stop', raw: 'stop' },
  usage,
  warnings: [],
});

function scriptedModel(): MockLanguageModelV3 {
  return new MockLanguageModelV3({
    doGenerate: [
      calls(['ai-1', 'read_file', { path: '/workspace/notes.md' }]),
      says('The notes say: ship the Q3 report on Friday.'),
      calls(['ai-2', 'write_file', { path: '/workspace/report.md', content: 'x'.repeat(5000) }]),
      says('That draft is over the 2000-character limit for one write, so it was refused. Shall I split it into parts?'),
      calls(
        ...['a', 'b', 'c', 'd', 'e'].map((f, i): [string, string, unknown] => [`ai-3${i}`, 'read_file', { path: `/workspace/${f}.md` }]),
      ),
      says(
        'a.md is "alpha" and b.md is "beta". Reading c, d and e hit the limit of 3 reads a minute (notes.md used one); I will retry them in a minute.',
      ),
      calls(['ai-4', 'write_file', { path: '/workspace/status.md', content: 'done' }]),
      says('Your session was ended for security because your connection changed. Please sign in again.'),
      calls(['ai-5', 'read_file', { path: '/workspace/status.md' }]),
      says('This session is closed; please start a new one.'),
    ],
  });
}

async function realModel(): Promise<LanguageModel | undefined> {
  if (!process.env.OPENAI_API_KEY) return undefined;
  const pkg = '@ai-sdk/openai';
  try {
    const { openai } = (await import(pkg)) as { openai: (id: string) => LanguageModel };
    return openai(process.env.OPENAI_MODEL ?? 'gpt-4o-mini');
  } catch {
    t.note('OPENAI_API_KEY is set but @ai-sdk/openai is not installed; using the scripted mock model');
    return undefined;
  }
}

const real = await realModel();
modelBanner('AI SDK file assistant behind Kavach', real ? `openai ${process.env.OPENAI_MODEL ?? 'gpt-4o-mini'}` : undefined);
const model = real ?? scriptedModel();

const guarded = guardTools(tools, kv.gate, {
  principal: (run) => (run.context as AppContext | undefined)?.principal,
  sessionId: kv.sessionId,
  environment: kv.environment,
  onDecision: t.decision,
});

const history: ModelMessage[] = [];
for (const phase of phases) {
  t.phase(phase.title);
  phase.before?.(kv.net, t);
  t.user(phase.user);
  history.push({ role: 'user', content: phase.user });
  const context: AppContext = { principal };
  const result = await generateText({
    model,
    system: 'You are a file assistant. Use the tools. When a tool call is refused, explain the refusal; do not retry it blindly.',
    messages: history,
    tools: guarded,
    stopWhen: stepCountIs(4),
    experimental_context: context,
  });
  for (const message of result.response.messages) {
    if (message.role !== 'tool') continue;
    for (const part of message.content) {
      if (part.type !== 'tool-result') continue;
      const out = part.output as { type: string; value?: unknown };
      t.modelSaw(part.toolCallId, out.type === 'error-text' ? out.value : (out.value ?? out));
    }
  }
  if (result.text) t.modelSays(result.text);
  history.push(...result.response.messages);
}

await kv.finish();
