/**
 * TypeScript factories built from component specs, so a TypeScript pipeline takes the same
 * config as a YAML one — the same camelCase fields, the same defaults, durations as strings
 * (`'500ms'`) — validated by the same schema, with every problem reported at once.
 */
import type { z } from 'zod';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { formatPath } from './problems.ts';
import type { BuildContext, ComponentKind, ComponentSpec, RecordStep, StageOf } from './registry.ts';
import { validateValue } from './validate.ts';

/** What a factory built from a spec may be told besides the component's config. */
export interface FactoryContext {
  /** The pipeline's name (default consumer group, transaction ids…). Default `sluice`. */
  readonly pipelineName?: string | undefined;
  /** Folder relative paths resolve against. Default the working directory. */
  readonly baseDir?: string | undefined;
  /** The stage's name in messages. Default the component's name. */
  readonly stageName?: string | undefined;
  /** For sources that run the pipeline's first step themselves ({@link ComponentSpec.runsFirstStep}). */
  readonly firstStep?: RecordStep | undefined;
}

/**
 * A factory that validates its argument against `spec.config` (the YAML schema) and builds the
 * stage with `spec.create`. Throws a `SLUICE_CONFIG` {@link SluiceError} listing every problem.
 *
 * @example
 * const kafkaSink = specFactory(kafkaSinkSpec);
 * kafkaSink({ brokers: 'localhost:9092', topic: 'out' }); // every other field takes its default
 */
export function specFactory<K extends ComponentKind, S extends z.ZodType>(
  spec: ComponentSpec<K, z.output<S>> & { readonly config: S },
): (config: z.input<S>, context?: FactoryContext) => StageOf<K> {
  return (config, context = {}) => {
    const parsed = validateValue(spec.config, config);
    if (!parsed.ok) {
      const problems = parsed.problems.map(
        (p) => `${p.path.length === 0 ? '' : `${formatPath(p.path)}: `}${p.message}`,
      );
      throw new SluiceError(
        ErrorCode.CONFIG,
        `invalid config of the \`${spec.name}\` ${spec.kind}: ${problems.join('; ')}`,
        { component: spec.name },
      );
    }
    const ctx: BuildContext = {
      baseDir: context.baseDir ?? process.cwd(),
      pipelineName: context.pipelineName ?? 'sluice',
      stageName: context.stageName ?? spec.name,
      ...(context.firstStep !== undefined ? { firstStep: context.firstStep } : {}),
    };
    return spec.create(parsed.value as z.output<S>, ctx);
  };
}
