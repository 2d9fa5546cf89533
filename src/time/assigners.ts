/**
 * Window assigners: which windows an event time belongs to. Windows are half-open
 * `[start, end)` in epoch ms; tumbling and sliding windows are aligned to the epoch (plus an
 * optional offset), session windows grow from the events of one key.
 */

/** Fixed-size, non-overlapping windows. */
export interface TumblingWindows {
  readonly kind: 'tumbling';
  /** Window length, ms. */
  readonly size: number;
  /** Shift of the window grid from the epoch, ms (e.g. a time zone's offset for daily windows). */
  readonly offset: number;
}

/** Fixed-size windows starting every `slide`: an event belongs to `size / slide` of them. */
export interface SlidingWindows {
  readonly kind: 'sliding';
  readonly size: number;
  readonly slide: number;
  readonly offset: number;
}

/** Per-key windows that close after `gap` without events; overlapping sessions merge. */
export interface SessionWindows {
  readonly kind: 'session';
  /** Events less than `gap` apart belong to one session; a session ends `gap` after its last event. */
  readonly gap: number;
}

/** Any window assigner. */
export type WindowAssigner = TumblingWindows | SlidingWindows | SessionWindows;

/** Tumbling windows of `size` ms (offset from the epoch by `offset`). */
export function tumblingWindows(size: number, offset = 0): TumblingWindows {
  if (!(size > 0)) throw new RangeError(`a tumbling window size must be > 0 ms, got ${size}`);
  return { kind: 'tumbling', size, offset: mod(offset, size) };
}

/**
 * Most windows one event may belong to (`size / slide` of a sliding window). Each event is
 * added to every one of them, so the cost per event grows with it: 1 h every 1 s (3,600) is
 * allowed, 1 d every 1 ms (86.4 million per event) is refused at lint instead of running for
 * minutes in gigabytes.
 */
export const MAX_WINDOWS_PER_EVENT = 10_000;

/** Sliding windows of `size` ms starting every `slide` ms; `size` must be a multiple of `slide`. */
export function slidingWindows(size: number, slide: number, offset = 0): SlidingWindows {
  if (!(size > 0) || !(slide > 0)) throw new RangeError('a sliding window needs a size and a slide > 0 ms');
  if (slide > size)
    throw new RangeError(`the slide (${slide} ms) must not be longer than the size (${size} ms)`);
  if (size % slide !== 0)
    throw new RangeError(`the size (${size} ms) must be a whole multiple of the slide (${slide} ms)`);
  if (size / slide > MAX_WINDOWS_PER_EVENT)
    throw new RangeError(
      `a sliding window of ${size} ms every ${slide} ms puts each event in ${(size / slide).toLocaleString('en-US')} windows, more than ${MAX_WINDOWS_PER_EVENT.toLocaleString('en-US')}; use a longer slide, a tumbling window, or a rolling aggregate`,
    );
  return { kind: 'sliding', size, slide, offset: mod(offset, slide) };
}

/** Session windows with inactivity `gap` ms. */
export function sessionWindows(gap: number): SessionWindows {
  if (!(gap > 0)) throw new RangeError(`a session gap must be > 0 ms, got ${gap}`);
  return { kind: 'session', gap };
}

/** `a mod b` in [0, b), also for negative `a` (times before 1970). */
export function mod(a: number, b: number): number {
  const r = a % b;
  return r < 0 ? r + b : r;
}
