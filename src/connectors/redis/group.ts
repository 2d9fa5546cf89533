/**
 * The `redis` source's consumer group: who it is (streams, group, consumer, server — the
 * {@link GroupScope} every part of the source names in its messages), creating the group on each
 * stream when missing, and taking over the pending entries of a consumer a restored checkpoint
 * was taken under.
 */
import type { Redis } from 'ioredis';
import { cancelledError, errorMessage, type SluiceError, wrapError } from '../../core/errors.ts';
import type { SourceContext } from '../../core/stage.ts';

/** Ids per XACK / XCLAIM / XPENDING command. */
export const CHUNK = 1000;

/** The group a source reads as, and its stage context once running. */
export interface GroupScope {
  readonly streams: readonly string[];
  readonly group: string;
  readonly consumer: string;
  /** The server's URL with its password redacted. */
  readonly where: string;
  /** The streams for messages: `` `a`, `b` ``. */
  readonly names: string;
  /** The stage's context (set by `open`/`run`). */
  readonly ctx: () => SourceContext;
}

/** True when `err` is a reply of the server (a command error), not a connection problem. */
export function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

/**
 * The error a failed step of the source rejects with: ``<doing> (Redis `url`, group `g`,
 * consumer `c`): <cause>``, or a cancellation when the run was cancelled meanwhile.
 */
export function groupError(scope: GroupScope, doing: string, err: unknown): SluiceError {
  const ctx = scope.ctx() as SourceContext | undefined;
  if (ctx?.signal.aborted) return cancelledError(ctx.signal.reason);
  const { where, group, consumer, streams } = scope;
  return wrapError(`${doing} (Redis \`${where}\`, group \`${group}\`, consumer \`${consumer}\`)`, err, {
    stage: ctx?.name,
    component: 'redis',
    streams,
    group,
    consumer,
  });
}

/**
 * Creates the group on every stream (and the stream itself, `MKSTREAM`) at `start` unless it
 * exists (an existing group keeps its position). Rejects with {@link groupError}.
 */
export async function ensureGroups(c: Redis, scope: GroupScope, start: string): Promise<void> {
  for (const stream of scope.streams) {
    try {
      await c.xgroup('CREATE', stream, scope.group, start, 'MKSTREAM');
    } catch (err) {
      if (isReplyError(err) && errorMessage(err).startsWith('BUSYGROUP')) continue;
      throw groupError(scope, `creating consumer group \`${scope.group}\` on stream \`${stream}\``, err);
    }
  }
}

/**
 * Moves the pending entries of consumer `from` (a previous run's name) to this consumer
 * (`XPENDING` + `XCLAIM … JUSTID`), logging how many. Rejects with {@link groupError}.
 */
export async function adoptPending(c: Redis, scope: GroupScope, from: string): Promise<void> {
  const { group, consumer } = scope;
  let moved = 0;
  try {
    for (const stream of scope.streams) {
      let start = '-';
      for (;;) {
        const rows = (await c.xpending(stream, group, start, '+', CHUNK, from)) as [
          string,
          string,
          number,
          number,
        ][];
        if (rows.length === 0) break;
        const ids = rows.map((r) => r[0]);
        await c.xclaim(stream, group, consumer, 0, ...ids, 'JUSTID');
        moved += ids.length;
        start = `(${ids[ids.length - 1]}`;
        if (rows.length < CHUNK) break;
      }
    }
  } catch (err) {
    throw groupError(scope, `taking over the pending entries of consumer \`${from}\``, err);
  }
  if (moved > 0)
    scope
      .ctx()
      .log.info(
        `Took over ${moved} pending entries of consumer \`${from}\` (the checkpoint being restored was taken under that name)`,
        { stage: scope.ctx().name },
      );
}
