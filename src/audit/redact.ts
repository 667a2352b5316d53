// Moved to the engine (approval requests show arguments minus the same redacted paths).
export { pointerSteps, redact } from '../engine/redact.ts';
