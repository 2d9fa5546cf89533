import { join, resolve } from 'node:path';
import type { CheckpointSettings } from '../checkpoint/setup.ts';
import { parseDuration } from '../core/duration.ts';
import { errorMessage } from '../core/errors.ts';
import { MAIN_PORT } from '../core/graph.ts';
import { lazyModule } from '../core/lazy-module.ts';
import type { RunOptions } from '../core/run.ts';
import type { Operator, Sink, Source } from '../core/stage.ts';
import { Pipeline, Stream } from '../pipeline.ts';
import { type ConfigProblem, configError, problemsOf } from '../spec/problems.ts';
import type { BuildContext, RecordStep } from '../spec/registry.ts';
import { didYouMean, listChoices } from '../spec/suggest.ts';
import {
  type ComponentConfig,
  type LoadOptions,
  loadPipelineFile,
  type PipelineConfig,
  type StepConfig,
} from './load.ts';
import { loadModuleExport, loadModuleStep, moduleRecordStep } from './module-steps.ts';
import { locate } from './yaml.ts';

// Loaded when a pipeline uses them (`parallelism:` on a module step, `checkpoint.scope:
// partition`), so that other runs do not load their modules (worker threads, partition state).
const partitioning = lazyModule<typeof import('../operators/partitioned.ts')>(
  import.meta.url,
  '../operators/partitioned.ts',
);

/** A pipeline built from a file, with the run options the file sets. */
export interface BuiltPipeline {
  readonly pipeline: Pipeline;
  /** `maxErrorRate`, `channelCapacity` and `maxStateBytes` from the file; pass them to `pipeline.run`. */
  readonly runOptions: RunOptions;
  /** Warnings of the file (e.g. a `dlq` that checkpoints do not cover). */
  readonly warnings: readonly ConfigProblem[];
  /** The file's `checkpoint:` settings, resolved (paths absolute); open them with `openCheckpoints`. */
  readonly checkpoint?: CheckpointSettings | undefined;
}

/**
 * What a `module:` step may export: a per-record function (one record out → map, an array →
 * flatMap, `undefined`/`null` → drop; it may be async), or an {@link Operator}.
 */
export type ModuleStepExport = ((record: unknown) => unknown) | Operator;

/**
 * Builds the graph of a validated pipeline file. Imports the modules of `module:` steps.
 * Throws a `SLUICE_CONFIG` error listing every problem: a factory that rejects its config,
 * a module that cannot be loaded or exports the wrong thing, a side output a step emits on
 * that `outputs:` lacks, an `outputs:` entry no step can emit on.
 *
 * @example
 * const config = await loadPipelineFile('etl.yaml', { registry: defaultRegistry });
 * const { pipeline, runOptions } = await buildPipeline(config);
 * await pipeline.run(runOptions).done;
 */
export async function buildPipeline(config: PipelineConfig): Promise<BuiltPipeline> {
  const problems: ConfigProblem[] = [];
  const problem = (
    at: { path: string; line?: number | undefined; column?: number | undefined },
    message: string,
  ) =>
    problems.push({
      severity: 'error',
      file: config.file,
      line: at.line,
      column: at.column,
      path: at.path,
      message,
    });

  const pipeline = new Pipeline(config.name);
  const graph = pipeline.graph;
  const buildContext = (c: ComponentConfig, dlq: boolean, firstStep?: RecordStep): BuildContext => ({
    baseDir: config.baseDir,
    pipelineName: config.name,
    stageName: c.stageName,
    ...(dlq ? { dlq } : {}),
    ...(firstStep !== undefined ? { firstStep } : {}),
  });
  const create = <S>(c: ComponentConfig, dlq = false, firstStep?: RecordStep): S | undefined => {
    try {
      return c.spec.create(c.config as never, buildContext(c, dlq, firstStep)) as S;
    } catch (err) {
      problem(
        { ...c, path: `${c.path}.${c.component}` },
        `cannot build ${c.kind} \`${c.component}\`: ${errorMessage(err)}`,
      );
      return undefined;
    }
  };

  const partitionScope = config.checkpoint?.scope === 'partition';
  if (partitionScope) {
    if (config.namedInputs)
      problem(
        { path: 'checkpoint.scope', ...locate(config.source, ['checkpoint', 'scope']) },
        '`scope: partition` takes one `input` (state follows its partitions), not `inputs`',
      );
    else if (config.input.spec.capabilities?.partitionedPositions !== true)
      problem(
        { path: 'checkpoint.scope', ...locate(config.source, ['checkpoint', 'scope']) },
        '`scope: partition` needs a `kafka` input (state follows its partitions)',
      );
    if (config.checkpoint?.wal !== undefined && config.checkpoint.wal !== false)
      problem(
        { path: 'checkpoint.wal', ...locate(config.source, ['checkpoint', 'wal']) },
        '`scope: partition` does not take `wal` (Kafka can be read again)',
      );
  }
  // An input that cannot be read again resumes only through the write-ahead log.
  const wal = config.checkpoint?.wal !== undefined && config.checkpoint.wal !== false;
  for (const input of config.inputs.values()) {
    if (config.namedInputs && input.spec.runsFirstStep?.(input.config as never) === true)
      problem(
        { ...input, path: `${input.path}.${input.component}` },
        `the \`${input.component}\` input would run the pipeline's first step inside the source (\`parallel\`), but with \`inputs:\` the first step is the \`join\`: remove \`parallel\` (put a \`module:\` step after the join instead)`,
      );
    if (config.checkpoint !== undefined && !wal && input.spec.capabilities?.readOnce === true)
      problem(
        { ...input, path: `${input.path}.${input.component}` },
        `the \`${input.component}\` input cannot be read again, so a checkpoint could not resume it (\`source ${input.stageName} (${input.component}) cannot resume from a position\`): add \`wal: true\` to \`checkpoint\` (the write-ahead log keeps what was read after the last checkpoint and replays it), or remove \`checkpoint\``,
      );
  }
  // Settings the sinks would refuse only when they start: said by `sluice lint` too.
  const sinkConfigs = [...config.output, ...config.outputs.values(), ...(config.dlq ? [config.dlq] : [])];
  const exactlyOnce = sinkConfigs.filter((c) => (c.config as { exactlyOnce?: unknown }).exactlyOnce === true);
  for (const c of exactlyOnce) {
    if (config.checkpoint === undefined)
      problem(
        { ...c, path: `${c.path}.${c.component}.exactlyOnce` },
        `\`exactlyOnce\` on the ${c.component} sink \`${c.stageName}\` commits once per checkpoint: add \`checkpoint: { interval: 10s }\` to the pipeline, or set \`exactlyOnce: false\``,
      );
  }
  // Under partition scope each member's checkpoints are its own: only a sink whose transactions
  // commit the input's own offsets (kafka → kafka) keeps exactly-once across members. Another
  // sink's exactly-once (PostgreSQL's prepared transactions and stored positions) is per
  // pipeline: members would collide on its transaction names and roll back each other's work.
  if (partitionScope && !config.namedInputs) {
    const family = config.input.component;
    for (const c of exactlyOnce) {
      if (c.spec.capabilities?.commitsSourceOffsets === family) continue;
      problem(
        { ...c, path: `${c.path}.${c.component}.exactlyOnce` },
        `\`exactlyOnce\` on the ${c.component} sink \`${c.stageName}\` does not work under \`checkpoint: { scope: partition }\`: its transactions and stored positions belong to the whole pipeline, so the members sharing the job would roll back each other's; use \`scope: pipeline\` (one process), a ${family} sink with \`exactlyOnce\`, or \`exactlyOnce: false\` with an idempotent write (e.g. an upsert)`,
      );
    }
  }
  // Sinks that commit the same sources' offsets in their transactions would both commit them.
  const committers = new Map<string, ComponentConfig[]>();
  for (const c of exactlyOnce) {
    const family = c.spec.capabilities?.commitsSourceOffsets;
    if (family !== undefined) committers.set(family, [...(committers.get(family) ?? []), c]);
  }
  for (const same of committers.values()) {
    if (same.length < 2) continue;
    const [, second] = same as [ComponentConfig, ComponentConfig];
    problem(
      { ...second, path: `${second.path}.${second.component}.exactlyOnce` },
      `two ${second.component} sinks with \`exactlyOnce\` (${listChoices(
        same.map((c) => c.stageName),
        'and',
      )}) would both commit the sources' offsets; keep \`exactlyOnce\` on one of them`,
    );
  }
  // A source that runs the first step itself (the kafka source's `parallel`) gets it as a function.
  let steps = config.steps;
  let firstStep: RecordStep | undefined;
  if (!config.namedInputs && config.input.spec.runsFirstStep?.(config.input.config as never) === true) {
    const first = steps[0];
    const needs = `the ${config.input.component} input runs the pipeline's first step inside the source (\`parallel\`), so that step must be a \`module:\` step exporting a per-record function (async allowed)`;
    if (first?.type === 'module' && first.parallelism !== undefined) {
      problem(
        { ...first, path: `${first.path}.parallelism` },
        `the ${config.input.component} input already runs this first step on its own workers (\`parallel\`); remove \`parallelism\` from \`${first.stageName}\`, or the input's \`parallel\``,
      );
    } else if (first?.type !== 'module') {
      problem(
        first ?? { ...config.input, path: `${config.input.path}.${config.input.component}.parallel` },
        `${needs}; ${first === undefined ? 'the pipeline has no steps' : `\`${first.stageName}\` is a \`${first.component}\` step`}`,
      );
    } else {
      const loaded = await loadModuleExport(first);
      if ('problem' in loaded) problem(first, loaded.problem);
      else if (typeof loaded.exported !== 'function')
        problem(first, `${needs}; export \`${first.exportName}\` of \`${first.module}\` is not a function`);
      else {
        firstStep = moduleRecordStep(loaded.exported as (record: unknown) => unknown, first.module);
        steps = steps.slice(1);
      }
    }
  }
  // Keep building after a failed stage so every problem is reported; a stand-in keeps the chain.
  const sources = new Map<string, Stream<unknown>>();
  for (const input of config.inputs.values()) {
    const source = create<Source>(input, false, config.namedInputs ? undefined : firstStep);
    sources.set(
      input.stageName,
      pipeline.from(source ?? placeholderSource, { name: input.stageName, component: input.component }),
    );
  }
  let stream: Stream<unknown> = sources.get(config.input.stageName) as Stream<unknown>;

  /** Steps that may emit on side ports, with the ports when known (undefined: unknown). */
  const emitters: { step: StepConfig; id: string; ports: readonly string[] | undefined }[] = [];
  /**
   * Adds `step` after `from` and returns the stream the next step reads. `suffix` tells the
   * copies of a `shard` segment apart (`enrich.0`, `enrich.1`, …).
   */
  const addStep = async (
    from: Stream<unknown>,
    step: StepConfig,
    suffix: string,
  ): Promise<Stream<unknown>> => {
    let operator: Operator | undefined;
    let ports: readonly string[] | undefined;
    if (step.type === 'component') {
      operator = create<Operator>(step);
      // Scale-out: a stateful step keeps one instance per source partition, so state moves with partitions.
      if (partitionScope && operator?.snapshot !== undefined) {
        operator = partitioning().partitionScoped(
          () => step.spec.create(step.config as never, buildContext(step, false)) as Operator,
        );
      }
      try {
        ports = step.spec.ports ? step.spec.ports(step.config as never) : undefined;
      } catch (err) {
        problem(step, `cannot tell the side outputs of \`${step.component}\`: ${errorMessage(err)}`);
      }
    } else {
      const loaded = await loadModuleStep(step);
      if ('problem' in loaded) problem(step, loaded.problem);
      else {
        operator = loaded.operator;
        ports = loaded.ports;
        if (partitionScope && operator.snapshot !== undefined)
          problem(
            step,
            `\`scope: partition\` cannot split the state of module step \`${step.stageName}\` by partition yet; use built-in steps for state, or \`scope: pipeline\``,
          );
      }
    }
    const component = step.type === 'component' ? step.component : 'module';
    const name = `${step.stageName}${suffix}`;
    const stream = from.via(operator ?? placeholderOperator, { name, component, buffer: step.buffer });
    emitters.push({ step, id: stream.node, ports });
    const nested = step.type === 'component' ? step.nested : undefined;
    if (nested === undefined) return stream;
    const { segments, lists } = nested;
    if (segments.layout === 'copies') {
      const copies: Stream<unknown>[] = [];
      for (const [i, port] of segments.ports.entries())
        copies.push(await addSteps(stream.side(port), lists[0] ?? [], `${suffix}.${i}`));
      const [first, ...rest] = copies;
      return first === undefined ? stream : first.merge(rest, { name: `${name}.merge`, component: 'merge' });
    }
    for (const [i, branch] of segments.branches.entries()) {
      const tee = stream.via(forwardTo(MAIN_PORT), {
        name: `${name}.${branch.name}`,
        component,
        buffer: branch.buffer,
      });
      const end = await addSteps(tee, lists[i] ?? [], suffix);
      const out = end.via(forwardTo(branch.name), { name: `${name}.${branch.name}.end`, component });
      emitters.push({ step, id: out.node, ports: [branch.name] });
    }
    return stream;
  };
  const addSteps = async (from: Stream<unknown>, list: readonly StepConfig[], suffix: string) => {
    let s = from;
    for (const step of list) s = await addStep(s, step, suffix);
    return s;
  };
  const joined = checkNamedInputs(config, steps, problem);
  if (joined !== undefined) {
    // The first step takes the named inputs (a `join`): each `inputs:` entry feeds its input.
    const id = graph.addOperator(create<Operator>(joined.step) ?? placeholderOperator, {
      name: joined.step.stageName,
      component: joined.step.component,
    });
    for (const { input, from } of joined.inputs) {
      const src = sources.get(from) as Stream<unknown>;
      graph.connect(src.node, id, src.port, joined.step.buffer, input);
    }
    emitters.push({ step: joined.step, id, ports: joined.step.spec.ports?.(joined.step.config as never) });
    stream = new Stream<unknown>(pipeline, id, MAIN_PORT);
    steps = steps.slice(1);
  }

  stream = await addSteps(stream, steps, '');

  // Named side outputs: each port a step declares goes to the `outputs:` entry of that name;
  // an entry no step declares goes to every step whose ports cannot be known.
  const sinkIds = new Map<string, string>();
  for (const [port, sinkConfig] of config.outputs) {
    const sink = create<Sink>(sinkConfig);
    sinkIds.set(
      port,
      graph.addSink(sink ?? placeholderSink, { name: sinkConfig.stageName, component: sinkConfig.component }),
    );
  }
  const claimed = new Set<string>();
  for (const e of emitters) {
    for (const port of e.ports ?? []) {
      if (port === MAIN_PORT || port === 'dlq') continue;
      const sinkId = sinkIds.get(port);
      if (sinkId === undefined) {
        const have = [...config.outputs.keys()];
        const guess = didYouMean(port, have);
        problem(
          e.step,
          `step \`${e.step.stageName}\` emits on side output \`${port}\`, but \`outputs:\` has no \`${port}\`; ${guess !== undefined ? `did you mean \`${guess}\`? Or add` : 'add'} \`outputs: { ${port}: { file: { path: ${port}.jsonl, format: jsonl } } }\`${have.length > 0 ? ` (outputs defined: ${listChoices(have, 'and')})` : ''}`,
        );
        continue;
      }
      graph.connect(e.id, sinkId, port, config.outputs.get(port)?.buffer);
      claimed.add(port);
    }
  }
  const open = emitters.filter((e) => e.ports === undefined);
  for (const [port, sinkId] of sinkIds) {
    if (claimed.has(port)) continue;
    const sinkConfig = config.outputs.get(port) as ComponentConfig;
    if (open.length === 0) {
      problem(
        { ...sinkConfig, path: `outputs.${port}` },
        `no step emits on side output \`${port}\`${emitters.some((e) => (e.ports?.length ?? 0) > 0) ? ` (steps emit on: ${listChoices([...new Set(emitters.flatMap((e) => e.ports ?? []))], 'and')})` : ''}; name it in a step (e.g. \`late: ${port}\` of a \`window\`, a route of a \`route\`) or remove it`,
      );
      continue;
    }
    for (const e of open) graph.connect(e.id, sinkId, port, sinkConfig.buffer);
  }

  for (const o of config.output) {
    stream.to(create<Sink>(o) ?? placeholderSink, {
      name: o.stageName,
      component: o.component,
      buffer: o.buffer,
    });
  }
  if (config.dlq)
    pipeline.dlq(create<Sink>(config.dlq, true) ?? placeholderSink, {
      name: config.dlq.stageName,
      component: config.dlq.component,
    });

  if (problems.length === 0) {
    try {
      graph.validate();
    } catch (err) {
      problems.push({ severity: 'error', file: config.file, path: '', message: errorMessage(err) });
    }
  }
  if (problems.length > 0) throw configError(config.file, [...problems, ...config.warnings]);
  const runOptions: RunOptions = {
    ...(config.maxErrorRate !== undefined ? { maxErrorRate: config.maxErrorRate } : {}),
    ...(config.channelCapacity !== undefined ? { channelCapacity: config.channelCapacity } : {}),
    ...(config.maxStateBytes !== undefined ? { maxStateBytes: config.maxStateBytes } : {}),
  };
  const cp = config.checkpoint;
  const checkpoint: CheckpointSettings | undefined =
    cp === undefined
      ? undefined
      : {
          dir: resolve(config.baseDir, cp.dir ?? join('.sluice', config.name)),
          intervalMs: parseDuration(cp.interval),
          everyRecords: cp.records,
          retain: cp.retain,
          store: cp.store,
          storeTls: cp.tls,
          namespace: cp.store === undefined ? undefined : (cp.namespace ?? config.name),
          storeTimeoutMs: cp.storeTimeout === undefined ? undefined : parseDuration(cp.storeTimeout),
          wal:
            cp.wal === undefined || cp.wal === false
              ? undefined
              : { fsync: (cp.wal === true ? undefined : cp.wal.fsync) ?? 'interval' },
          scope: cp.scope,
        };
  return { pipeline, runOptions, warnings: config.warnings, checkpoint };
}

/**
 * The rules of named inputs: with `inputs:`, the first step takes them (a `join`, whose spec
 * names its `inputs`), every input it names exists and every input is taken; a step with named
 * inputs is first and only with `inputs:`. Returns that first step and its inputs when the file
 * has `inputs:` and they hold, after reporting every problem.
 */
function checkNamedInputs(
  config: PipelineConfig,
  steps: readonly StepConfig[],
  problem: (
    at: { path: string; line?: number | undefined; column?: number | undefined },
    message: string,
  ) => void,
): { step: ComponentConfig; inputs: readonly { input: string; from: string }[] } | undefined {
  const takesInputs = (s: StepConfig | undefined): s is ComponentConfig =>
    s?.type === 'component' && s.spec.inputs !== undefined;
  // Inside a `shard` or `fanOut` a step has one input: the segment's.
  const nestedJoins = (list: readonly StepConfig[]): ComponentConfig[] =>
    list.flatMap((s) =>
      s.type === 'component' && s.nested !== undefined
        ? s.nested.lists.flatMap((l) => [...l.filter(takesInputs), ...nestedJoins(l)])
        : [],
    );
  for (const s of nestedJoins(steps))
    problem(
      s,
      `\`${s.component}\` joins the pipeline's named inputs, so it cannot be inside a \`shard\` or \`fanOut\`; make it the first step of \`pipeline\``,
    );
  steps.forEach((s, i) => {
    if (!takesInputs(s) || (i === 0 && config.namedInputs)) return;
    problem(
      s,
      config.namedInputs
        ? `\`${s.component}\` takes the pipeline's named inputs, so it must be the first step; move it to the top of \`pipeline\``
        : `\`${s.component}\` joins named inputs: replace \`input:\` with \`inputs:\` naming each source (\`inputs: { orders: { kafka: … }, payments: { kafka: … } }\`) and name them in the step`,
    );
  });
  if (!config.namedInputs) return undefined;
  const first = steps[0];
  const names = [...config.inputs.keys()];
  if (!takesInputs(first)) {
    problem(
      first ?? { path: 'inputs', ...locate(config.source, ['inputs']) },
      `with \`inputs:\` the first step joins them: start \`pipeline\` with \`- join: { left: ${names[0] ?? 'a'}, right: ${names[1] ?? 'b'}, … }\`${first === undefined ? '' : `, not \`${first.stageName}\``}`,
    );
    return undefined;
  }
  const inputs = first.spec.inputs?.(first.config as never) ?? [];
  let ok = true;
  for (const { input, from } of inputs) {
    if (config.inputs.has(from)) continue;
    ok = false;
    const field =
      input === 'right' && (first.config as { table?: string }).table !== undefined ? 'table' : input;
    const guess = didYouMean(from, names);
    problem(
      {
        path: `${first.path}.${first.component}.${field}`,
        ...locate(config.source, ['pipeline', 0, first.component, field]),
      },
      `\`${from}\` is not an entry of \`inputs:\`${guess ? `; did you mean \`${guess}\`?` : ''} The inputs are ${listChoices(names, 'and')}.`,
    );
  }
  const used = new Set(inputs.map((i) => i.from));
  for (const name of names) {
    if (used.has(name)) continue;
    const at = config.inputs.get(name) as ComponentConfig;
    problem(
      { ...at, path: `inputs.${name}` },
      `input \`${name}\` is read but \`${first.stageName}\` does not take it; name it in the \`${first.component}\` step or remove it`,
    );
  }
  return ok ? { step: first, inputs } : undefined;
}

/**
 * Everything `sluice lint` reports for a file: syntax and validation problems, and what
 * building finds (modules, side outputs, factories). Never throws for a bad file.
 */
export async function lintPipelineFile(file: string, options: LoadOptions): Promise<ConfigProblem[]> {
  try {
    const config = await loadPipelineFile(file, options);
    const built = await buildPipeline(config);
    return [...config.warnings, ...parallelProblems(config, built)];
  } catch (err) {
    const problems = problemsOf(err);
    if (problems.length === 0) throw err;
    return problems;
  }
}

/** A warning for each step asking for `parallelism` that would run on one thread, saying why. */
function parallelProblems(config: PipelineConfig, built: BuiltPipeline): ConfigProblem[] {
  const reasons = built.pipeline.parallelWarnings(built.checkpoint !== undefined);
  return config.steps.flatMap((step) => {
    const why = reasons.get(step.stageName);
    if (why === undefined) return [];
    const component = step.type === 'component' ? step.component : 'module';
    return [
      {
        severity: 'warning' as const,
        file: config.file,
        line: step.line,
        column: step.column,
        path: `${step.path}.${component}.parallelism`,
        message: `step \`${step.stageName}\` runs on one thread: ${why}`,
      },
    ];
  });
}

/** Forwards every batch unchanged on `port`: a `fanOut` branch's buffered start and its end. */
function forwardTo(port: string): Operator {
  return { process: (batch, out) => out.emit(batch, port) };
}

const placeholderSource: Source = { run: async () => {} };
const placeholderOperator: Operator = { process: () => {} };
const placeholderSink: Sink = { write: () => {} };
