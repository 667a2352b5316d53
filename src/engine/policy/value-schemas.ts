/** The zod building blocks policy values are made of, shared by conditions, invariants and headers. */
import { z } from 'zod';
import { parseDuration } from '../duration.ts';
import { fieldProblem } from '../json-pointer.ts';
import { globProblem } from '../glob.ts';

/** A string refinement from a function that names what is wrong with a value (or nothing). */
export const refineWith = (problem: (v: string) => string | undefined) => (v: string, ctx: z.RefinementCtx) => {
  const p = problem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
};

const durationProblem = (v: string | number): string | undefined => {
  try {
    parseDuration(v);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

export const text = z.string().min(1, 'must not be empty').max(4096);
export const glob = z.string().max(1024).superRefine(refineWith(globProblem));
export const field = z.string().max(1024).superRefine(refineWith(fieldProblem));
export const duration = z.union([z.string(), z.number()]).superRefine((v, ctx) => {
  const p = durationProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
export const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1, 'must not be empty')]);
export const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** Whose counter a rate limit or budget charges. */
export const PER_SCOPES = ['principal+action', 'principal', 'session', 'global'] as const;
export type Per = (typeof PER_SCOPES)[number];
