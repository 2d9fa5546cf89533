/**
 * The `sluice` command: `run`, `lint`, `schema`, `list` and `kafka topics`. `bin/sluice.js` calls
 * {@link main} with the user's arguments and exits with the code it returns.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import type { Registry } from '../spec/registry.ts';
import { addKafkaCommands } from './kafka.ts';
import { type LogFormat, parseLogFormat } from './logs.ts';
import {
  type CliIO,
  ExitCode,
  exitCodeOf,
  printError,
  printProblems,
  redacting,
  type TextOut,
} from './output.ts';

export type { CliIO } from './output.ts';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * Runs the `sluice` command line `argv` (without `node` and the script) and resolves with the
 * exit code: 0 ok, 1 failed run or lint problems, 2 configuration or usage error, 130 (143 after SIGTERM) stopped
 * by a second Ctrl-C. `io` replaces the process's streams, environment, signals and the
 * default component registry (for tests).
 *
 * @example
 * process.exitCode = await main(['lint', 'pipeline.yaml']);
 */
export async function main(argv: string[], io: Partial<CliIO> = {}): Promise<number> {
  // Whatever the CLI says passes through the redaction of secret values (`core/secrets.ts`).
  const stdout: TextOut = redacting(io.stdout ?? process.stdout);
  const stderr: TextOut = redacting(io.stderr ?? process.stderr);
  const env = io.env ?? process.env;
  let registry = io.registry;
  // Loaded on demand: `sluice --help` works even when a component module is broken.
  const fullRegistry = async () => {
    registry ??= (await import('../components.ts')).defaultRegistry;
    return registry;
  };
  /** The IO of a command; for `run`/`lint` of a YAML `file`, with only the components it names. */
  const getIO = async (file?: string, sets: readonly string[] = []): Promise<CliIO> => {
    const partial =
      io.registry === undefined && file !== undefined ? await registryForFile(file, sets) : undefined;
    return {
      stdout,
      stderr,
      env,
      registry: partial ?? (await fullRegistry()),
      fullRegistry: partial === undefined ? undefined : fullRegistry,
      signals: io.signals ?? process,
      statusIntervalMs: io.statusIntervalMs,
    };
  };

  let code: number = ExitCode.OK;
  const program = new Command('sluice')
    .description('Stream processing for TypeScript: run declarative YAML pipelines.')
    .version(version())
    .exitOverride()
    .showHelpAfterError('(run `sluice --help` for usage)')
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) });

  const collect = (value: string, previous: string[]) => [...previous, value];

  program
    .command('run')
    .description(
      'Run a pipeline: a YAML file, or a module whose default export is a Pipeline (or a function returning one).',
    )
    .argument('<file>', 'pipeline file (.yaml) or module (.ts, .js)')
    .option(
      '--set <path=value>',
      'override a value of the file, e.g. --set pipeline[0].batch.size=10 (repeatable)',
      collect,
      [],
    )
    .option(
      '--http <host:port>',
      'serve /metrics (Prometheus), /health, /ready and a live dashboard there, e.g. 127.0.0.1:9464',
    )
    .option('--log-format <format>', 'text (default) or json: one JSON object per line on stderr')
    .action(async (file: string, opts: { set: string[]; http?: string; logFormat?: string }) => {
      let logFormat: LogFormat;
      try {
        logFormat = parseLogFormat(opts.logFormat);
      } catch (err) {
        printError(stderr, err, env);
        code = exitCodeOf(err);
        return;
      }
      // Loaded here, not at the top: `sluice --version`, `--help` and `list` do not load the run
      // path (config loading, the pipeline, zod, yaml).
      const { runCommand } = await import('./run.ts');
      code = await runCommand(
        file,
        { set: opts.set, http: opts.http, logFormat },
        await getIO(file, opts.set),
      );
    });

  program
    .command('lint')
    .description('Check a pipeline file and report every problem with its line and column.')
    .argument('<file>', 'pipeline file (.yaml) or module (.ts, .js)')
    .option('--set <path=value>', 'override a value of the file (repeatable)', collect, [])
    .action(async (file: string, opts: { set: string[] }) => {
      code = await lintCommand(file, opts.set, await getIO(file, opts.set));
    });

  addKafkaCommands(
    program,
    () => getIO(),
    (c) => {
      code = c;
    },
  );

  program
    .command('schema')
    .description('Print the JSON Schema of pipeline files (for editors).')
    .action(async () => {
      const { registry: r } = await getIO();
      const { pipelineJsonSchema } = await import('../config/schema.ts');
      stdout.write(`${JSON.stringify(pipelineJsonSchema(r), null, 2)}\n`);
    });

  program
    .command('list')
    .description(
      'List components with their summaries; `list source|operator|sink` one kind; `list NAME` one component in full.',
    )
    .argument('[what]', 'a kind (source, operator, sink) or a component name')
    .action(async (what: string | undefined) => {
      const { registry: r } = await getIO();
      const { listCommand } = await import('./list.ts');
      code = listCommand(r, what, stdout, stderr);
    });

  try {
    if (argv.length === 0) {
      program.outputHelp();
      return ExitCode.OK;
    }
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0
        ? ExitCode.OK
        : ExitCode.CONFIG;
    }
    printError(stderr, err, env);
    return exitCodeOf(err);
  }
}

/**
 * The registry of the built-in components a YAML pipeline file names (see
 * `component-modules.ts`); undefined for a module file, or a file that cannot be read or parsed
 * (the full registry then reports the problem as usual).
 */
async function registryForFile(file: string, sets: readonly string[]): Promise<Registry | undefined> {
  const [{ isModuleFile }, { parse }, { keysOf, registryFor }] = await Promise.all([
    import('../config/module-steps.ts'),
    import('yaml'),
    import('../component-modules.ts'),
  ]);
  if (isModuleFile(file)) return undefined;
  try {
    return await registryFor(keysOf(parse(readFileSync(file, 'utf8')), sets));
  } catch {
    return undefined;
  }
}

/** `sluice lint FILE`: every problem, one per line; exit 1 if any error, else an `ok` line. */
async function lintCommand(file: string, set: readonly string[], io: CliIO): Promise<number> {
  const [{ lintPipelineFile }, { isModuleFile, loadPipelineModule }] = await Promise.all([
    import('../config/build.ts'),
    import('../config/module-steps.ts'),
  ]);
  if (isModuleFile(file)) {
    try {
      const pipeline = await loadPipelineModule(file);
      pipeline.graph.validate();
      io.stdout.write(`${file}: ok\n`);
      return ExitCode.OK;
    } catch (err) {
      printError(io.stdout, err, io.env);
      return ExitCode.FAILED;
    }
  }
  let problems = await lintPipelineFile(file, { registry: io.registry, env: io.env, set });
  // Errors are checked again against every component, so "did you mean" can name one the file
  // did not load; warnings alone do not depend on the registry.
  if (problems.some((p) => p.severity === 'error') && io.fullRegistry !== undefined) {
    problems = await lintPipelineFile(file, { registry: await io.fullRegistry(), env: io.env, set });
  }
  printProblems(io.stdout, problems);
  const errors = problems.filter((p) => p.severity === 'error').length;
  const warnings = problems.length - errors;
  const w = warnings > 0 ? ` (${warnings} warning${warnings === 1 ? '' : 's'})` : '';
  if (errors > 0) {
    io.stdout.write(`${file}: ${errors} problem${errors === 1 ? '' : 's'}${w}\n`);
    return ExitCode.FAILED;
  }
  io.stdout.write(`${file}: ok${w}\n`);
  return ExitCode.OK;
}

/**
 * Ends the process with `code` from {@link main}: at once after a second Ctrl-C (130, or 143 for
 * SIGTERM), where pending writes to a blocked stdout or stderr (a pipe nobody reads) or stages
 * still winding down must not keep it alive; otherwise when the event loop is empty.
 */
export function exitProcess(code: number): void {
  if (code === ExitCode.INTERRUPTED || code === ExitCode.TERMINATED) process.exit(code);
  process.exitCode = code;
}

// `npm run sluice -- …` runs this file directly.
if (import.meta.main) exitProcess(await main(process.argv.slice(2)));
