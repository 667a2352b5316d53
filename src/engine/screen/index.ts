export {
  screenOutput,
  describeWithheld,
  outputBlocked,
  recordedFindings,
  MAX_RECORDED_FINDINGS,
  MAX_DEPTH,
  type ScreenResult,
  type ScreenFinding,
  type ScreenBlock,
} from './screen-output.ts';
export { ScreenSet, type CompiledScreen } from './screen-set.ts';
export { SCREEN_MODES, type ScreenMode, type ScreenSpec, type PatternSpec } from './spec.ts';
export { BUILT_IN_DETECTORS, DETECTOR_NAMES } from './detectors.ts';
export type { Detector, Span } from './detector.ts';
export { customRegexProblem } from './regex-safety.ts';
export { scanToolDefinition, escapeText, TOOL_FINDING_KINDS, type ToolFinding, type ToolFindingKind } from './tool-scan.ts';
