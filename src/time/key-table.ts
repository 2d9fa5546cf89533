/**
 * {@link KeyTable}: a table of values by string key for the window's per-record lookups (a
 * record's key by its key field values, a key's newest window).
 *
 * Why not a `Map`: the window looks a key up once or more per record, usually with the very string
 * objects the decoder interned, and a property load on a null-prototype object (V8 keeps it as a
 * hash table, a "dictionary-mode" object) finds those about twice as fast as `Map#get` — measured
 * with 72 two-field keys over 1.5M lookups, 16 vs 44 ns for the two-level pair lookup, and 29 vs
 * 85 ns with 100k keys. A null prototype means no key is special: `__proto__`, `constructor` or
 * `toString` are plain keys, and an index-like key (`"5"`) is stored as an element, still found by
 * the same string.
 */

/** A table of values of type `V` by string key (see the module comment). */
export class KeyTable<V> {
  private table: Record<string, V | undefined> = Object.create(null);
  /** Keys held. */
  size = 0;

  /** The value of `key`, or undefined. */
  get(key: string): V | undefined {
    return this.table[key];
  }

  /** Sets the value of `key` (never undefined). */
  set(key: string, value: V): void {
    const t = this.table;
    if (t[key] === undefined) this.size++;
    t[key] = value;
  }

  /** Removes `key`, if held. */
  delete(key: string): void {
    const t = this.table;
    if (t[key] === undefined) return;
    delete t[key];
    this.size--;
  }

  /** The keys held (index-like keys first, in ascending order; then the others in insertion order). */
  keys(): string[] {
    return Object.keys(this.table);
  }

  /** Removes every key. */
  clear(): void {
    this.table = Object.create(null);
    this.size = 0;
  }
}
