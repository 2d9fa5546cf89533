/**
 * Field helpers every component spec shares, so a duration (or any other common value) is
 * validated in one place with one wording.
 */
import { z } from 'zod';
import { parseDuration } from '../core/duration.ts';
import { errorMessage } from '../core/errors.ts';

/** Pushes the parse error of a bad duration onto `ctx`; returns the milliseconds or undefined. */
function checkDuration(value: string, ctx: z.RefinementCtx): number | undefined {
  try {
    return parseDuration(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: errorMessage(err), input: value });
    return undefined;
  }
}

/** A duration string (`500ms`, `10s`, `1m`, `2h`, `1d`), parsed to milliseconds. */
export function durationField(): z.ZodPipe<z.ZodString, z.ZodTransform<number, string>> {
  return z.string().transform((value, ctx) => checkDuration(value, ctx) ?? z.NEVER);
}

/**
 * A duration string validated as {@link durationField} does, but kept as written (for configs
 * that carry the text on, e.g. `checkpoint.interval`).
 */
export function durationText(): z.ZodString {
  return z.string().superRefine((value, ctx) => {
    checkDuration(value, ctx);
  });
}
