/**
 * Text a `kavach` command prints that came from somewhere else (a policy file, an audit record, a
 * tool description an MCP server sent): every character that would act on the terminal instead of
 * showing is written as a `\u` escape, so that text cannot rewrite, hide or reorder what the
 * reader sees. C0 and C1 controls (U+009B is CSI to a terminal decoding UTF-8), DEL, bidi marks,
 * embeddings, overrides and isolates, line and paragraph separators, zero-width and every other
 * format character (`\p{Cf}`: the tool-definition scan counts the same as invisible), and Unicode
 * tag characters (ASCII smuggling).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\p{Cf}\u{e0000}-\u{e007f}]/gu;

function escapeChar(c: string): string {
  const code = c.codePointAt(0) as number;
  return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** The text with every unsafe character escaped, line breaks included: it stays on one line. */
export function visible(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** The same, keeping `\n` (multi-line messages such as a TOML parse error quoting its lines). */
export function visibleLines(text: string): string {
  return text.replace(UNSAFE, (c) => (c === '\n' ? c : escapeChar(c)));
}

/**
 * JSON for a terminal: JSON.stringify escapes C0 controls inside strings but leaves C1 controls,
 * bidi overrides and separators raw. As `\u` escapes they are the same JSON value.
 */
export function terminalJson(value: unknown, indent?: number): string {
  // JSON has no \u{...}: a character beyond U+FFFF is written as its two UTF-16 escapes.
  return (JSON.stringify(value, null, indent) ?? 'null').replace(UNSAFE, (c) =>
    c === '\n' ? c : [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}
