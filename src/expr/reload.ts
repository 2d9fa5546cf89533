/**
 * Where rule sets come from while a pipeline runs: a file (watched with `fs.watch`, plus a
 * poll through the run's clock in case events are lost — network file systems, editors that
 * replace the file) or an HTTP URL (polled with `If-None-Match`, so an unchanged set costs a
 * `304`). A source only fetches text; compiling and swapping is the {@link RuleSlot}'s job.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';

/** Where to load a rule set from: exactly one of `file` and `url`. */
export interface RulesSourceOptions {
  /** Path of a YAML or JSON rule-set file (watched). */
  readonly file?: string | undefined;
  /** `http(s)://` URL of a rule set (polled with ETag). */
  readonly url?: string | undefined;
  /** Milliseconds between polls. Default 1000 for a file, 30000 for a URL. */
  readonly pollInterval?: number | undefined;
}

/** What a running source needs from its stage. */
export interface RuleSourceContext {
  readonly clock: Clock;
  /** Aborted when the run ends; the source stops polling. */
  readonly signal: AbortSignal;
}

/**
 * A place rule sets are read from. `load` once at startup; then `start` watches and calls
 * `onText` with every text that differs from the previous one, and `onError` when reading
 * fails (the running set stays). `check` polls once now. `close` stops everything.
 */
export interface RuleSource {
  /** The file path or URL, for messages. */
  readonly origin: string;
  /** Reads the current rule set text. Throws (with the reason) when it cannot. */
  load(signal?: AbortSignal): Promise<string>;
  /** Starts watching/polling. Called once, after `load`. */
  start(ctx: RuleSourceContext, onText: (text: string) => void, onError: (err: unknown) => void): void;
  /** Checks for a new text now; resolves after `onText`/`onError` ran, if they had to. */
  check(): Promise<void>;
  /** Stops watching and polling; idempotent. */
  close(): void;
}

/** Largest rule set accepted, in bytes. */
export const MAX_RULES_BYTES = 1 << 20;

/** Creates the source `options` describes; relative file paths resolve against the working directory. */
export function ruleSource(options: RulesSourceOptions): RuleSource {
  if ((options.file === undefined) === (options.url === undefined)) {
    throw new SluiceError(ErrorCode.CONFIG, 'a rules source needs exactly one of `file` and `url`');
  }
  if (options.file !== undefined) return new FileRuleSource(options.file, options.pollInterval ?? 1000);
  return new HttpRuleSource(options.url as string, options.pollInterval ?? 30_000);
}

abstract class PollingSource implements RuleSource {
  abstract readonly origin: string;
  protected readonly interval: number;
  protected onText: ((text: string) => void) | undefined;
  protected onError: ((err: unknown) => void) | undefined;
  protected lastText: string | undefined;
  private chain: Promise<void> = Promise.resolve();
  protected readonly stop = new AbortController();

  constructor(interval: number) {
    if (!(interval > 0))
      throw new SluiceError(ErrorCode.CONFIG, `rules \`pollInterval\` must be above 0, got ${interval}`);
    this.interval = interval;
  }

  abstract load(signal?: AbortSignal): Promise<string>;
  /** Reads the text if it may have changed; undefined when it is known unchanged. */
  protected abstract fetchIfChanged(signal: AbortSignal): Promise<string | undefined>;

  start(ctx: RuleSourceContext, onText: (text: string) => void, onError: (err: unknown) => void): void {
    this.onText = onText;
    this.onError = onError;
    const signal = AbortSignal.any([ctx.signal, this.stop.signal]);
    const poll = async (): Promise<void> => {
      while (!signal.aborted) {
        await ctx.clock.sleep(this.interval, signal);
        await this.check();
      }
    };
    poll().catch(() => {}); // ends with the abort of the run or of `close`
  }

  check(): Promise<void> {
    // One read at a time, in order, so an older text never overtakes a newer one.
    this.chain = this.chain.then(async () => {
      if (this.stop.signal.aborted) return;
      try {
        const text = await this.fetchIfChanged(this.stop.signal);
        if (text === undefined || text === this.lastText || this.stop.signal.aborted) return;
        this.lastText = text;
        this.onText?.(text);
      } catch (err) {
        if (!this.stop.signal.aborted) this.onError?.(err);
      }
    });
    return this.chain;
  }

  close(): void {
    this.stop.abort();
  }
}

/** A rule-set file, watched with `fs.watch` on its folder and polled as a fallback. */
export class FileRuleSource extends PollingSource {
  readonly origin: string;
  private watcher: FSWatcher | undefined;

  constructor(path: string, interval: number) {
    super(interval);
    this.origin = path;
  }

  async load(): Promise<string> {
    const text = await readRules(this.origin);
    this.lastText = text;
    return text;
  }

  override start(
    ctx: RuleSourceContext,
    onText: (text: string) => void,
    onError: (err: unknown) => void,
  ): void {
    super.start(ctx, onText, onError);
    // Watch the folder, not the file: editors and deploy tools replace files by renaming.
    const name = basename(this.origin);
    try {
      this.watcher = watch(dirname(this.origin), { persistent: false }, (_event, file) => {
        if (file === null || file === name) this.check().catch(() => {});
      });
      this.watcher.on('error', () => {
        // The poll goes on; nothing else to do.
        this.watcher?.close();
      });
    } catch {
      // fs.watch unsupported here: the poll alone notices changes.
    }
  }

  protected fetchIfChanged(): Promise<string | undefined> {
    return readRules(this.origin);
  }

  override close(): void {
    super.close();
    this.watcher?.close();
    this.watcher = undefined;
  }
}

async function readRules(path: string): Promise<string> {
  const buf = await readFile(path);
  if (buf.length > MAX_RULES_BYTES) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `rule set ${path} is ${buf.length} bytes, above the limit of ${MAX_RULES_BYTES}`,
      { file: path },
    );
  }
  return buf.toString('utf8');
}

/** A rule set behind an HTTP(S) URL, polled with `If-None-Match`. */
export class HttpRuleSource extends PollingSource {
  readonly origin: string;
  private etag: string | undefined;

  constructor(url: string, interval: number) {
    super(interval);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new SluiceError(ErrorCode.CONFIG, `rules \`url\` ${JSON.stringify(url)} is not a valid URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `rules \`url\` must be http:// or https://, got ${parsed.protocol}`,
      );
    }
    this.origin = url;
  }

  async load(signal?: AbortSignal): Promise<string> {
    const text = await this.fetchIfChanged(signal ?? this.stop.signal);
    if (text === undefined)
      throw new SluiceError(ErrorCode.CONFIG, `rule set ${this.origin} answered 304 to the first request`);
    this.lastText = text;
    return text;
  }

  protected async fetchIfChanged(signal: AbortSignal): Promise<string | undefined> {
    const headers: Record<string, string> = { accept: 'application/yaml, application/json, text/plain' };
    if (this.etag !== undefined) headers['if-none-match'] = this.etag;
    const res = await fetch(this.origin, {
      headers,
      signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
    });
    if (res.status === 304) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new SluiceError(
        ErrorCode.STAGE,
        `fetching rule set ${this.origin}: HTTP ${res.status} ${res.statusText}`,
      );
    }
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_RULES_BYTES) {
      await res.body?.cancel();
      throw new SluiceError(
        ErrorCode.CONFIG,
        `rule set ${this.origin} is ${length} bytes, above the limit of ${MAX_RULES_BYTES}`,
      );
    }
    const text = await res.text();
    if (text.length > MAX_RULES_BYTES)
      throw new SluiceError(
        ErrorCode.CONFIG,
        `rule set ${this.origin} is above the limit of ${MAX_RULES_BYTES} bytes`,
      );
    this.etag = res.headers.get('etag') ?? undefined;
    return text;
  }
}
