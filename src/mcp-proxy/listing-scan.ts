import { scanToolDefinition, type ToolFinding } from '../engine/screen/tool-scan.ts';
import { visible } from '../engine/terminal-text.ts';

/** What takes the place of a title or description the scan found something in. */
export const WITHHELD_TEXT = "[withheld by kavach: the server's text here held hidden instructions or invisible characters]";

/** The fields of a listed prompt, resource or template a model reads as a description of it. */
const DESCRIBING = /^\/(title|description|arguments\/\d+\/(title|description))$/;

/** Items whose findings were logged, per server listing: told once, not on every listing. */
const TOLD_MAX = 10_000;

/**
 * Prompts, resources and resource templates reach the client as their servers describe them,
 * and a model reads those titles and descriptions as it reads a tool's, so the tool-definition
 * scan reads them too. A finding in a title or description replaces that text with a notice (the
 * item stays usable: its name and URI are the server's); a finding anywhere else (the name, the
 * URI) keeps the item out of the list. Each item's findings are logged once.
 */
export class ListingScreen {
  private readonly told = new Set<string>();

  constructor(private readonly log: (message: string) => void) {}

  screen<T extends object>(server: string, kind: 'prompt' | 'resource' | 'resource template', items: T[], keyOf: (item: T) => string): T[] {
    let out: T[] | undefined;
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as T;
      const findings = scanToolDefinition(item);
      if (findings.length === 0) {
        out?.push(item);
        continue;
      }
      out ??= items.slice(0, i);
      const describing = findings.every((f) => f.key !== true && DESCRIBING.test(f.field));
      this.tell(server, kind, keyOf(item), findings, describing);
      if (describing) out.push(withheld(item, findings));
    }
    return out ?? items;
  }

  private tell(server: string, kind: string, key: string, findings: ToolFinding[], describing: boolean): void {
    const id = `${server}\0${kind}\0${key}`;
    if (this.told.has(id)) return;
    if (this.told.size >= TOLD_MAX) this.told.clear();
    this.told.add(id);
    const kinds = [...new Set(findings.map((f) => f.kind))].join(', ');
    const fields = [...new Set(findings.map((f) => f.field))].join(', ');
    this.log(
      `upstream ${server}: ${kind} '${visible(key.slice(0, 200))}': ${kinds} in ${fields}; ${describing ? 'that text is withheld' : 'not listed'}`,
    );
  }
}

/** A copy of `item` with each describing field a finding is in replaced by the notice. */
function withheld<T extends object>(item: T, findings: ToolFinding[]): T {
  const copy = { ...item } as Record<string, unknown>;
  for (const { field } of findings) {
    const [, top, index, leaf] = field.split('/');
    if (index === undefined) {
      copy[top as string] = WITHHELD_TEXT;
      continue;
    }
    // /arguments/N/description: that argument, copied once.
    const args = [...(copy.arguments as Record<string, unknown>[])];
    args[Number(index)] = { ...args[Number(index)], [leaf as string]: WITHHELD_TEXT };
    copy.arguments = args;
  }
  return copy as T;
}
