import type { ToolFinding } from '../../engine/screen/tool-scan.ts';
import { visible } from '../../engine/terminal-text.ts';

/**
 * Tool-definition scan findings for a terminal, one per kind and field: where, how often, and the
 * text around it. The excerpt was escaped when it was found (`\u200b`, `\x1b`); it goes through
 * `visible` again, since a pin file it may come from is only a file.
 */
export function describeFindings(findings: readonly ToolFinding[], indent = '  '): string {
  let text = '';
  for (const f of findings) {
    const where =
      f.source === 'server'
        ? 'the server instructions'
        : `${visible(String(f.field)) || '(the definition)'}${f.key ? ' (a property name)' : ''}`;
    const times = typeof f.count === 'number' && f.count > 1 ? ` (${f.count} times)` : '';
    text += `${indent}found ${visible(String(f.kind))} in ${where}${times}:\n${indent}  ${visible(String(f.excerpt))}\n`;
  }
  return text;
}
