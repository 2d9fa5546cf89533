/**
 * User code in a pipeline: the export a `module:` step names, loaded and turned into an operator
 * (or into the record step of a source that runs the first step itself, or a `parallelism` step on
 * worker threads), and TypeScript pipeline modules for `sluice run pipeline.ts`. `build.ts` wires
 * what these return into the pipeline.
 */
import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { keptBatch } from '../core/kept-batch.ts';
import { lazyModule } from '../core/lazy-module.ts';
import type { Operator, StageContext } from '../core/stage.ts';
import { Pipeline } from '../pipeline.ts';
import { configError } from '../spec/problems.ts';
import type { RecordStep } from '../spec/registry.ts';
import { listChoices } from '../spec/suggest.ts';
import type { ModuleStepConfig } from './load.ts';

const parallelSteps = lazyModule<typeof import('../operators/parallel-step.ts')>(
  import.meta.url,
  '../operators/parallel-step.ts',
);

/** The export a `module:` step names, or the problem that keeps it from loading. */
export async function loadModuleExport(
  step: ModuleStepConfig,
): Promise<{ exported: unknown } | { problem: string }> {
  if (!existsSync(step.modulePath))
    return { problem: `module \`${step.module}\` not found (looked for ${step.modulePath})` };
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(step.modulePath).href)) as Record<string, unknown>;
  } catch (err) {
    return { problem: `cannot load module \`${step.module}\`: ${errorMessage(err)}` };
  }
  const exported = mod[step.exportName];
  if (exported === undefined) {
    const names = Object.keys(mod);
    return {
      problem: `module \`${step.module}\` has no export \`${step.exportName}\`${names.length > 0 ? `; its exports: ${listChoices(names, 'and')} (pick one with \`module: { path: ${step.module}, export: NAME }\`)` : ''}`,
    };
  }
  return { exported };
}

/**
 * A module's per-record function as a {@link RecordStep} for a source that runs the first step
 * itself: same results as {@link recordFunctionOperator} (a record, an array, or none), and a
 * failure becomes a `SLUICE_RECORD` error naming the module, which the source dead-letters.
 */
export function moduleRecordStep(fn: (record: unknown) => unknown, label: string): RecordStep {
  return async (record) => {
    try {
      return await fn(record);
    } catch (err) {
      throw new SluiceError(
        ErrorCode.RECORD,
        `module \`${label}\` threw: ${errorMessage(err)}`,
        {},
        { cause: err },
      );
    }
  };
}

/** The operator a `module:` step runs (and the side-output ports it declares), or why it cannot load. */
export async function loadModuleStep(
  step: ModuleStepConfig,
): Promise<{ operator: Operator; ports: readonly string[] | undefined } | { problem: string }> {
  const loaded = await loadModuleExport(step);
  if ('problem' in loaded) return loaded;
  const { exported } = loaded;
  if (step.parallelism !== undefined) {
    if (typeof exported !== 'function')
      return {
        problem: `\`parallelism\` runs a per-record function on worker threads, but export \`${step.exportName}\` of module \`${step.module}\` is ${exported === null ? 'null' : typeof exported === 'object' ? 'an operator object, whose state lives on one thread' : typeof exported}; export a function \`(record) => record | record[] | undefined\`, or remove \`parallelism\``,
      };
    const operator = parallelSteps().parallelStep({
      module: step.modulePath,
      export: step.exportName,
      parallelism: step.parallelism,
      ...(step.key !== undefined ? { key: step.key } : {}),
      label: step.module,
    });
    return { operator, ports: [] };
  }
  if (typeof exported === 'function')
    return { operator: recordFunctionOperator(exported as (r: unknown) => unknown, step.module), ports: [] };
  if (
    exported !== null &&
    typeof exported === 'object' &&
    typeof (exported as Operator).process === 'function'
  ) {
    const declared = (exported as { ports?: unknown }).ports;
    const ports =
      Array.isArray(declared) && declared.every((p) => typeof p === 'string')
        ? (declared as string[])
        : undefined;
    return { operator: exported as Operator, ports };
  }
  return {
    problem: `export \`${step.exportName}\` of module \`${step.module}\` is ${exported === null ? 'null' : typeof exported}; export a function \`(record) => record | record[] | undefined\` or an operator object with a \`process(batch, out)\` method`,
  };
}

/**
 * Adapts a per-record function to an operator: a returned record is kept, an array is
 * flattened, `undefined`/`null` drops the record, a thrown error (or rejected promise)
 * dead-letters it. Metadata follows each record (unbuilt while no stage reads it).
 *
 * @example
 * const op = recordFunctionOperator((r: any) => (r.ok ? { ...r, seen: true } : undefined), 'enrich.ts');
 */
export function recordFunctionOperator(fn: (record: unknown) => unknown, label: string): Operator {
  let ctx: StageContext | undefined;
  return {
    open(c) {
      ctx = c;
    },
    async process(batch, out) {
      const records: unknown[] = [];
      // Which input record each output came from: the meta follows without being built
      // (core/kept-batch.ts); it is read only for a dead letter.
      const kept: number[] = [];
      for (let i = 0; i < batch.records.length; i++) {
        const record = batch.records[i];
        let result: unknown;
        try {
          result = fn(record);
          if (
            result !== null &&
            typeof result === 'object' &&
            typeof (result as Promise<unknown>).then === 'function'
          ) {
            result = await result;
          }
        } catch (err) {
          const error = new SluiceError(
            ErrorCode.RECORD,
            `module \`${label}\` threw: ${errorMessage(err)}`,
            { stage: ctx?.name },
            { cause: err },
          );
          if (!ctx) throw error;
          ctx.deadLetter(record, error, batch.meta?.[i]);
          continue;
        }
        if (result === undefined || result === null) continue;
        if (Array.isArray(result)) {
          for (const r of result) {
            records.push(r);
            kept.push(i);
          }
        } else {
          records.push(result);
          kept.push(i);
        }
      }
      await out.emit(keptBatch(batch, records, kept));
    },
  };
}

/**
 * Loads a TypeScript (or JavaScript) module whose default export is a {@link Pipeline}, or a
 * function (possibly async) returning one — for `sluice run pipeline.ts`.
 */
export async function loadPipelineModule(file: string): Promise<Pipeline> {
  const path = resolve(file);
  if (!existsSync(path)) {
    throw configError(file, [
      { severity: 'error', file, path: '', message: 'cannot read the pipeline module: no such file' },
    ]);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw new SluiceError(
      ErrorCode.CONFIG,
      `loading pipeline module ${file}: ${errorMessage(err)}`,
      { file },
      { cause: err },
    );
  }
  let value = mod.default;
  if (typeof value === 'function') value = await (value as () => unknown)();
  if (!isPipeline(value)) {
    throw configError(file, [
      {
        severity: 'error',
        file,
        path: '',
        message:
          `the default export must be a \`Pipeline\` or a function returning one, got ${value === undefined ? 'nothing' : typeof value}; e.g. \`export default new Pipeline('name')\` built with \`.from(…).to(…)\`` +
          // A module that runs its own pipeline at the top level has just done so, while imported.
          (value === undefined
            ? ` (code at the module's top level ran when it was imported: a module that runs its pipeline itself is run with \`node ${file}\`, or runs it only \`if (import.meta.main)\`)`
            : ''),
      },
    ]);
  }
  return value;
}

/** True for file names `sluice run` treats as code (a pipeline module) rather than YAML. */
export function isModuleFile(file: string): boolean {
  return ['.ts', '.mts', '.js', '.mjs'].includes(extname(file));
}

// A module may import `Pipeline` from another copy of Sluice (dist vs src), so `instanceof`
// is not enough; the shape is what runs.
function isPipeline(v: unknown): v is Pipeline {
  return (
    v instanceof Pipeline ||
    (v !== null &&
      typeof v === 'object' &&
      typeof (v as Pipeline).run === 'function' &&
      typeof (v as Pipeline).graph === 'object')
  );
}
