/**
 * A binary min-heap: what a join keeps in event-time order to purge (buffered records by the end
 * of their range, pending lookups by their time) without scanning every key at each watermark.
 */
export class MinHeap<T> {
  private readonly a: T[] = [];
  private readonly less: (x: T, y: T) => number;

  /** @param compare negative when `x` comes before `y` */
  constructor(compare: (x: T, y: T) => number) {
    this.less = compare;
  }

  /** How many items it holds. */
  get size(): number {
    return this.a.length;
  }

  /** The first item, or undefined when empty. */
  peek(): T | undefined {
    return this.a[0];
  }

  /** Adds `item`. O(log n). */
  push(item: T): void {
    const a = this.a;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.less(a[i] as T, a[parent] as T) >= 0) break;
      [a[i], a[parent]] = [a[parent] as T, a[i] as T];
      i = parent;
    }
  }

  /** Removes and returns the first item. O(log n). */
  pop(): T | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l] as T, a[m] as T) < 0) m = l;
      if (r < a.length && this.less(a[r] as T, a[m] as T) < 0) m = r;
      if (m === i) break;
      [a[i], a[m]] = [a[m] as T, a[i] as T];
      i = m;
    }
    return top;
  }

  /** Every item, in no particular order. */
  items(): readonly T[] {
    return this.a;
  }

  /** Removes every item. */
  clear(): void {
    this.a.length = 0;
  }
}
