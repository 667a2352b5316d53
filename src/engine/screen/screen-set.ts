/**
 * Compiled screens, and which of them apply to an action. A policy set carries one, so a gate
 * reload replaces the screens together with the policies.
 */
import { compileGlobs, type Matcher } from '../glob.ts';
import { FOLDABLE_CLASS } from './fold.ts';
import { regexDetector, type Detector } from './detector.ts';
import { BUILT_IN_DETECTORS } from './detectors.ts';
import type { ScreenMode, ScreenSpec } from './spec.ts';

export interface CompiledScreen {
  readonly name: string;
  readonly mode: ScreenMode;
  readonly appliesTo: Matcher;
  readonly detectors: readonly Detector[];
}

/** One detector to run on each string, and what its matches mean under the screens that list it. */
export interface PlannedDetector {
  readonly detector: Detector;
  readonly screens: readonly CompiledScreen[];
  /** Some screen listing it redacts: its matches are replaced. */
  readonly redact: boolean;
  /** Some screen listing it blocks: a match withholds the whole result. */
  readonly block: boolean;
}

/** What to run for one action: each detector once, however many screens list it. */
export interface ScreenPlan {
  readonly screens: readonly CompiledScreen[];
  readonly detectors: readonly PlannedDetector[];
  /** One regex over every anchor of the other detectors, and which detectors each anchor wakes. */
  readonly anchors: { readonly regex: RegExp; readonly wakes: ReadonlyMap<string, readonly PlannedDetector[]> } | undefined;
  /** Some screen may change or withhold the output (redact or block), not only report on it. */
  readonly enforcing: boolean;
  /** No custom pattern: a text shorter than any built-in match can be skipped. */
  readonly builtInOnly: boolean;
}

const CACHE_LIMIT = 10_000;

export class ScreenSet {
  readonly screens: readonly CompiledScreen[];
  private readonly plans = new Map<string, ScreenPlan | null>();

  constructor(specs: readonly ScreenSpec[]) {
    this.screens = specs.map(compileScreen);
  }

  get size(): number {
    return this.screens.length;
  }

  /** The plan for `action`, or undefined when no screen applies (cached per action name). */
  planFor(action: string): ScreenPlan | undefined {
    if (this.screens.length === 0) return undefined;
    let plan = this.plans.get(action);
    if (plan === undefined) {
      plan = buildPlan(this.screens.filter((s) => s.appliesTo(action)));
      if (this.plans.size >= CACHE_LIMIT) this.plans.clear();
      this.plans.set(action, plan);
    }
    return plan ?? undefined;
  }
}

export const NO_SCREENS = new ScreenSet([]);

function compileScreen(spec: ScreenSpec): CompiledScreen {
  const builtIns = spec.detectors.map((name) => BUILT_IN_DETECTORS.get(name) as Detector);
  const custom = spec.patterns.map((p) =>
    regexDetector({
      name: p.name,
      label: `text matching the pattern "${p.name}"`,
      regexes: [new RegExp(p.regex, 'gu')],
    }),
  );
  return {
    name: spec.name,
    mode: spec.mode,
    // The narrower reading, as for permit policies: `*` is any run, everything else literal.
    appliesTo: spec.actions ? compileGlobs(spec.actions) : () => true,
    detectors: [...builtIns, ...custom],
  };
}

function buildPlan(screens: readonly CompiledScreen[]): ScreenPlan | null {
  if (screens.length === 0) return null;
  const byDetector = new Map<Detector, CompiledScreen[]>();
  for (const screen of screens) {
    for (const detector of screen.detectors) {
      const list = byDetector.get(detector);
      if (list) list.push(screen);
      else byDetector.set(detector, [screen]);
    }
  }
  const detectors: PlannedDetector[] = [...byDetector].map(([detector, listing]) => ({
    detector,
    screens: listing,
    redact: listing.some((s) => s.mode === 'redact'),
    block: listing.some((s) => s.mode === 'block'),
  }));
  const wakes = new Map<string, PlannedDetector[]>();
  for (const planned of detectors) {
    for (const anchor of planned.detector.anchors ?? []) {
      const list = wakes.get(anchor);
      if (list) list.push(planned);
      else wakes.set(anchor, [planned]);
    }
  }
  // Longest first, so an anchor that contains another (`sk-ant-` and `sk-`) is the one reported.
  const source = [...wakes.keys()]
    .sort((a, b) => b.length - a.length)
    .map(escapeRegex)
    .join('|');
  return {
    screens,
    detectors,
    // The same pass notes characters to fold (fold.ts): no second pass over every text for them.
    anchors: wakes.size > 0 ? { regex: new RegExp(`${source}|${FOLDABLE_CLASS}`, 'g'), wakes } : undefined,
    enforcing: screens.some((s) => s.mode !== 'report'),
    builtInOnly: detectors.every((d) => BUILT_IN_DETECTORS.get(d.detector.name) === d.detector),
  };
}

function escapeRegex(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
