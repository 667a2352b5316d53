import { parseScreens, type ScreenSpec } from '../../../src/engine/screen/spec.ts';
import { ScreenSet } from '../../../src/engine/screen/screen-set.ts';
import { DETECTOR_NAMES } from '../../../src/engine/screen/detectors.ts';

export const ALL_DETECTORS = [...DETECTOR_NAMES];

/** A ScreenSet from raw `[[screen]]` tables, validated as the loader would. */
export function screensOf(...raw: object[]): ScreenSet {
  return new ScreenSet(parseScreens(raw, 'screen'));
}

export function redactAll(extra: Partial<ScreenSpec> = {}): ScreenSet {
  return screensOf({ name: 'secrets', detectors: ALL_DETECTORS, mode: 'redact', ...extra });
}

export const ctx = (actionName = 'fs.read_text_file') => ({ actionName });
