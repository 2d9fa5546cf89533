/**
 * Where rule sets come from while a pipeline runs: a file (watched with `fs.watch`, plus a
 * poll through the run's clock in case events are lost — network file systems, editors that
 * replace the file) or an HTTP URL (polled with `If-None-Match`, so an unchanged set costs a
 * `304`). A source only fetches text; compiling and swapping is the {@link RuleSlot}'s job.
 */
import { createHash } from 'node:crypto';
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
  /**
   * Allow a plain `http://` URL to a host other than the loopback (`localhost`, `127.x.x.x`,
   * `::1`): anyone on the path can then read and change the rules. Default false.
   */
  readonly allowInsecure?: boolean | undefined;
  /** Largest rule set accepted, in bytes; an HTTP body is cut off as soon as it passes it. Default 1 MiB. */
  readonly maxBytes?: number | undefined;
  /**
   * Hex SHA-256 the rule-set text must have. A text with another digest is refused (the running
   * set stays), so with it the set cannot change without changing the pipeline.
   */
  readonly sha256?: string | undefined;
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

/** Largest rule set accepted by default, in bytes (`maxBytes`). */
export const MAX_RULES_BYTES = 1 << 20;

/** How every source checks what it read: size and, when asked, the digest. */
interface ContentCheck {
  readonly maxBytes: number;
  readonly sha256: string | undefined;
}

function contentCheck(options: RulesSourceOptions): ContentCheck {
  const maxBytes = options.maxBytes ?? MAX_RULES_BYTES;
  if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0))
    throw new SluiceError(
      ErrorCode.CONFIG,
      `rules \`maxBytes\` must be a whole number above 0, got ${maxBytes}`,
    );
  const sha256 = options.sha256?.toLowerCase();
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256))
    throw new SluiceError(
      ErrorCode.CONFIG,
      `rules \`sha256\` must be 64 hex digits (as \`sha256sum FILE\` prints), got ${JSON.stringify(options.sha256)}`,
    );
  return { maxBytes, sha256 };
}

/** Checks the digest of `bytes` (when one is pinned) and decodes them. */
function verified(bytes: Buffer, origin: string, check: ContentCheck): string {
  if (check.sha256 !== undefined) {
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== check.sha256)
      throw new SluiceError(
        ErrorCode.CONFIG,
        `rule set ${origin} has SHA-256 ${actual}, not the \`sha256\` ${check.sha256} the pipeline pins; publish the expected set or update \`sha256\``,
        { origin, expected: check.sha256, actual },
      );
  }
  return bytes.toString('utf8');
}

function tooBig(origin: string, size: string, maxBytes: number): SluiceError {
  return new SluiceError(
    ErrorCode.CONFIG,
    `rule set ${origin} is ${size} bytes, above the limit of ${maxBytes}; shrink it or raise \`maxBytes\``,
    { origin, maxBytes },
  );
}

/** Creates the source `options` describes; relative file paths resolve against the working directory. */
export function ruleSource(options: RulesSourceOptions): RuleSource {
  if ((options.file === undefined) === (options.url === undefined)) {
    throw new SluiceError(ErrorCode.CONFIG, 'a rules source needs exactly one of `file` and `url`');
  }
  const check = contentCheck(options);
  if (options.file !== undefined)
    return new FileRuleSource(options.file, options.pollInterval ?? 1000, check);
  return new HttpRuleSource(
    options.url as string,
    options.pollInterval ?? 30_000,
    check,
    options.allowInsecure === true,
  );
}

/** True for `localhost` and loopback addresses: traffic to them never leaves the machine. */
function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
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
  private readonly content: ContentCheck;

  constructor(path: string, interval: number, content: ContentCheck = contentCheck({})) {
    super(interval);
    this.origin = path;
    this.content = content;
  }

  async load(): Promise<string> {
    const text = await readRules(this.origin, this.content);
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
    return readRules(this.origin, this.content);
  }

  override close(): void {
    super.close();
    this.watcher?.close();
    this.watcher = undefined;
  }
}

async function readRules(path: string, content: ContentCheck): Promise<string> {
  const buf = await readFile(path);
  if (buf.length > content.maxBytes) throw tooBig(path, String(buf.length), content.maxBytes);
  return verified(buf, path, content);
}

/** A rule set behind an HTTP(S) URL, polled with `If-None-Match`. */
export class HttpRuleSource extends PollingSource {
  readonly origin: string;
  private etag: string | undefined;
  private readonly content: ContentCheck;

  constructor(
    url: string,
    interval: number,
    content: ContentCheck = contentCheck({}),
    allowInsecure = false,
  ) {
    super(interval);
    this.content = content;
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
    if (parsed.protocol === 'http:' && !allowInsecure && !isLoopback(parsed.hostname)) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `rules \`url\` ${url} is plain http: anyone on the network path can read or change the rules; use https://, or set \`allowInsecure: true\` (ideally with \`sha256\`) if this network is trusted`,
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
    const { maxBytes } = this.content;
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > maxBytes) {
      await res.body?.cancel();
      throw tooBig(this.origin, String(length), maxBytes);
    }
    // Counted while it streams: a server that sends no (or a false) length cannot make us buffer more.
    const chunks: Buffer[] = [];
    let received = 0;
    if (res.body !== null) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.byteLength;
        if (received > maxBytes) {
          await reader.cancel();
          throw tooBig(this.origin, `more than ${maxBytes}`, maxBytes);
        }
        chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      }
    }
    const text = verified(Buffer.concat(chunks, received), this.origin, this.content);
    this.etag = res.headers.get('etag') ?? undefined;
    return text;
  }
}
