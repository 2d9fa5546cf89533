/**
 * How deep a record may nest, and two walks of any value that never recurse: one that finds
 * where a value nests too deep, one that renders a bounded preview of it. Hostile input (a JSON
 * line of 5,000 nested objects is 35 KB) overflows the stack of every recursive walk —
 * `JSON.stringify`, `v8.serialize`, `structuredClone` — so the stages that read records bound
 * their depth ({@link MAX_RECORD_DEPTH}) and the stages that write them fall back to these walks.
 */
import { ErrorCode, SluiceError } from './errors.ts';

/**
 * Deepest nesting of objects and arrays a record may have (the record itself is level 1).
 * Measured on Node 24 with its default stack (984 KiB), from the top of the stack and with 6,000
 * frames already used: `JSON.stringify` fails at 4,457 / 2,743 levels, `v8.serialize` at 3,293 /
 * 2,030, `v8.deserialize` and `structuredClone` at 1,646 / 934. 512 leaves room below the lowest
 * (a checkpoint must restore what it stored) for the state around a record and a deep call stack.
 * Decoders reject deeper input (`SLUICE_PARSE`), encoders deeper records (`SLUICE_RECORD`).
 */
export const MAX_RECORD_DEPTH = 512;

/** Path segments shown when naming where a value nests too deep. */
const PATH_SHOWN = 6;

/**
 * Where `value` nests deeper than `max` levels of objects and arrays: a path such as
 * `a.a.a.a.a.a…` (its first segments), or undefined when it does not. Iterative, and it stops at
 * the first place found, so it costs at most the value's size. A cycle counts as deep.
 *
 * @example
 * deeperThan({ a: { a: { a: 1 } } }, 2); // 'a.a'
 * deeperThan({ a: [1, 2] }, 2); // undefined
 */
export function deeperThan(value: unknown, max: number = MAX_RECORD_DEPTH): string | undefined {
  if (!isContainer(value)) return undefined;
  // Depth-first: each frame is a container, its keys, the next key to visit and its own key.
  const stack: { keys: readonly string[]; at: number; obj: object; key: string }[] = [];
  stack.push({ obj: value, keys: keysOf(value), at: 0, key: '' });
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as (typeof stack)[number];
    if (top.at >= top.keys.length) {
      stack.pop();
      continue;
    }
    const key = top.keys[top.at++] as string;
    const child = readProperty(top.obj, key);
    if (!isContainer(child)) continue;
    if (stack.length >= max) {
      const path = stack
        .slice(1, PATH_SHOWN + 1)
        .map((f) => f.key)
        .concat(stack.length <= PATH_SHOWN ? [key] : []);
      return path.join('.') + (stack.length > PATH_SHOWN ? '…' : '');
    }
    stack.push({ obj: child, keys: keysOf(child), at: 0, key });
  }
  return undefined;
}

/**
 * The `SLUICE_RECORD` error for a record that nests deeper than {@link MAX_RECORD_DEPTH}:
 * what, where (`path`, from {@link deeperThan}) and what to do. `doing` says what failed, e.g.
 * `writing JSON`.
 */
export function tooDeepError(doing: string, path: string, cause?: unknown): SluiceError {
  return new SluiceError(
    ErrorCode.RECORD,
    `${doing}: the record nests deeper than ${MAX_RECORD_DEPTH} levels of objects and arrays (at \`${path}\`); flatten it (e.g. with a \`map\` step) or let it go to the dlq`,
    { field: path, maxDepth: MAX_RECORD_DEPTH },
    cause === undefined ? undefined : { cause },
  );
}

/** Default size of a {@link previewRecord}, in UTF-16 code units: 4 KiB of ASCII. */
export const PREVIEW_CHARS = 4096;

/** Levels of nesting a {@link previewRecord} shows; deeper containers are written `…`. */
const PREVIEW_DEPTH = 32;

/**
 * A bounded text view of any value, for a dead letter that cannot hold the value itself: a string
 * is cut to `maxChars`, bytes are decoded as UTF-8 and cut, anything else is written JSON-like
 * (bigints as numbers, containers below 32 levels as `…`) and cut, with `…` marking a cut. Never
 * throws and never recurses: a getter that throws or a proxy gives `?`.
 *
 * @example
 * previewRecord({ a: [1, 'x', 2n] }); // '{"a":[1,"x",2]}'
 * previewRecord('x'.repeat(10), 4); // 'xxxx…'
 */
export function previewRecord(value: unknown, maxChars: number = PREVIEW_CHARS): string {
  try {
    if (typeof value === 'string') return cutText(value, maxChars);
    if (value instanceof Uint8Array) {
      const n = Math.min(value.length, maxChars * 4);
      return cutText(Buffer.from(value.buffer, value.byteOffset, n).toString('utf8'), maxChars);
    }
    return cutText(new Preview(maxChars).render(value), maxChars);
  } catch {
    return '?';
  }
}

/**
 * `text` cut to at most `maxChars` UTF-16 code units plus `…` when longer, never inside a
 * surrogate pair (a lone half would make the result invalid Unicode).
 */
export function cutText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  let n = maxChars;
  const c = text.charCodeAt(n - 1);
  if (c >= 0xd800 && c <= 0xdbff) n--;
  return `${text.slice(0, n)}…`;
}

/** The iterative writer behind {@link previewRecord}; stops once it has `max` characters. */
class Preview {
  private out = '';
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  render(value: unknown): string {
    // Work items: a value to write, or text to append (closing brackets and separators).
    const work: ({ v: unknown; depth: number } | string)[] = [{ v: value, depth: 1 }];
    while (work.length > 0 && this.out.length <= this.max) {
      const item = work.pop() as (typeof work)[number];
      if (typeof item === 'string') {
        this.out += item;
        continue;
      }
      const { v, depth } = item;
      if (!isContainer(v)) {
        this.out += scalar(v, this.max);
        continue;
      }
      if (depth > PREVIEW_DEPTH) {
        this.out += '"…"';
        continue;
      }
      const array = Array.isArray(v);
      const keys = keysOf(v);
      this.out += array ? '[' : '{';
      work.push(array ? ']' : '}');
      // Pushed in reverse so they pop in order; only as many as could still fit.
      const n = Math.min(keys.length, this.max - this.out.length);
      if (n < keys.length) work.push(',"…"');
      for (let i = n - 1; i >= 0; i--) {
        const key = keys[i] as string;
        work.push({ v: readProperty(v, key), depth: depth + 1 });
        const label = array ? '' : `${scalar(key, 64)}:`;
        work.push(i > 0 ? `,${label}` : label);
      }
    }
    return this.out;
  }
}

function scalar(v: unknown, max: number): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(cutText(v, max));
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'bigint':
    case 'boolean':
      return String(v);
    case 'undefined':
    case 'function':
    case 'symbol':
      return 'null';
    default:
      return v === null ? 'null' : v instanceof Date ? JSON.stringify(dateText(v)) : '?';
  }
}

function dateText(d: Date): string {
  return Number.isNaN(d.getTime()) ? 'Invalid Date' : d.toISOString();
}

function isContainer(v: unknown): v is object {
  return v !== null && typeof v === 'object' && !(v instanceof Date) && !ArrayBuffer.isView(v);
}

function keysOf(v: object): readonly string[] {
  try {
    return Array.isArray(v) ? Array.from(v.keys(), String) : Object.keys(v);
  } catch {
    return [];
  }
}

function readProperty(obj: object, key: string): unknown {
  try {
    return (obj as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}
