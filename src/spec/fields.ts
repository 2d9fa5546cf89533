/**
 * Field helpers every component spec shares, so a duration (or any other common value) is
 * validated in one place with one wording.
 */
import { z } from 'zod';
import { parseDuration } from '../core/duration.ts';
import { errorMessage } from '../core/errors.ts';
import { connectionUrlProblem } from '../core/url.ts';

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

/**
 * A refinement of connection URL fields (`url: postgres://…`): reports a URL the clients would
 * misread, e.g. a password holding `@` then `/`, `?` or `#` that is not percent-encoded (see
 * `core/url.ts`). The message never quotes the URL. Add it after the field's scheme check.
 *
 * @example
 * const url = z.string().regex(/^redis:\/\//, 'must be a `redis://` URL').superRefine(checkConnectionUrl);
 */
export function checkConnectionUrl(value: string, ctx: z.RefinementCtx): void {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) return; // the scheme check says it
  const problem = connectionUrlProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `the URL ${problem}`, input: value });
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/**
 * A size in bytes: a whole number, or text with a unit (`64MB`, `1.5GiB`, `512KiB`; decimal
 * `KB`/`MB`/`GB`, binary `KiB`/`MiB`/`GiB`, `B`), parsed to a whole number of bytes ≥ 1.
 *
 * @example
 * z.object({ maxSize: sizeField() }).parse({ maxSize: '64MB' }); // { maxSize: 64000000 }
 */
export function sizeField(): z.ZodPipe<
  z.ZodUnion<readonly [z.ZodNumber, z.ZodString]>,
  z.ZodTransform<number, number | string>
> {
  return z.union([z.number(), z.string()]).transform((value, ctx) => {
    const m = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*([KMG]i?B|B)$/i.exec(value.trim()) : null;
    const bytes =
      typeof value === 'number'
        ? value
        : m === null
          ? Number.NaN
          : Number(m[1]) * (SIZE_UNITS[(m[2] as string).toLowerCase()] ?? Number.NaN);
    if (
      !Number.isFinite(bytes) ||
      Math.round(bytes) < 1 ||
      (typeof value === 'number' && !Number.isInteger(value))
    ) {
      ctx.addIssue({
        code: 'custom',
        message: `\`${String(value)}\` is not a size; write a whole number of bytes or a size such as \`64MB\`, \`512KiB\`, \`1GiB\``,
        input: value,
      });
      return z.NEVER;
    }
    return Math.round(bytes);
  });
}

/**
 * The buffer of an edge: `size` in messages and the `overflow` policy when it is full. A stage's
 * `buffer:` and a `fanOut` branch's use it.
 */
export function bufferField() {
  return z.strictObject({
    size: z.number().int().min(1).optional().describe('Batches the edge queues; default `channelCapacity`.'),
    overflow: z
      .enum(['block', 'dropOldest', 'error'])
      .optional()
      .describe('When full: `block` (backpressure, default), `dropOldest`, or `error`.'),
  });
}
