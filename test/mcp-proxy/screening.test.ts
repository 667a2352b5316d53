import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { MAX_OUTCOME_FINDINGS } from '../../src/audit/entry.ts';
import { Gate } from '../../src/engine/gate.ts';
import { screenToolAnswer } from '../../src/mcp-proxy/screening.ts';

const FAKE_KEY = `AKIA${'QX7Z2M4K'.repeat(2)}`;
const PERMIT_ALL = '[[policy]]\nname = "all"\neffect = "permit"\nconditions = [{ action = "*" }]\n';
const REPORT_KEYS = `${PERMIT_ALL}\n[[screen]]\nname = "keys"\ndetectors = ["aws_access_key"]\nmode = "report"\n`;

describe('screenToolAnswer', () => {
  it('with no [[screen]] hands back the very same answer object, with nothing to record', () => {
    const gate = Gate.fromToml(PERMIT_ALL);
    const answer: CallToolResult = { content: [{ type: 'text', text: `key ${FAKE_KEY}` }] };
    const screened = screenToolAnswer(gate, 'fx.leak', 'e-1', answer);
    expect(screened.result).toBe(answer);
    expect(screened).not.toHaveProperty('findings');
    expect(screened).not.toHaveProperty('withheld');
  });

  it('bounds what the outcome record keeps: at most MAX_OUTCOME_FINDINGS findings, long paths cut', () => {
    const gate = Gate.fromToml(REPORT_KEYS);
    const many: CallToolResult = {
      content: Array.from({ length: MAX_OUTCOME_FINDINGS + 10 }, () => ({ type: 'text' as const, text: FAKE_KEY })),
    };
    expect(screenToolAnswer(gate, 'fx.leak', 'e-1', many).findings).toHaveLength(MAX_OUTCOME_FINDINGS);
    const deep: CallToolResult = { content: [], structuredContent: { ['k'.repeat(5000)]: FAKE_KEY } };
    const [finding] = screenToolAnswer(gate, 'fx.leak', 'e-1', deep).findings ?? [];
    expect(finding?.path.length).toBeLessThanOrEqual(1025);
    expect(finding?.path.startsWith('/structuredContent/kkk')).toBe(true);
  });
});
