/**
 * `sluice kafka topics create | list | describe`: topic administration through the Kafka admin
 * API (`connectors/kafka/topics.ts`), so nothing outside Sluice is needed to make a topic. The
 * connection options are those of the `kafka` components: `--brokers`, TLS (`--tls`, `--ca`,
 * `--cert`, `--key`, `--servername`) and SASL (`--sasl <mechanism>`, `--username`,
 * `--password-env VAR` — a password is taken from the environment, never from the command line —
 * `--token-env VAR`, `--token-command`, `--token-url`).
 */
import type { Command } from 'commander';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { registerSecret } from '../core/secrets.ts';
import { type CliIO, ExitCode, exitCodeOf, printError } from './output.ts';

/** Connection options every `sluice kafka` command takes. */
interface ConnectionFlags {
  brokers: string;
  tls?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  insecure?: boolean;
  sasl?: string;
  username?: string;
  passwordEnv?: string;
  tokenEnv?: string;
  tokenCommand?: string;
  tokenUrl?: string;
  clientId?: string;
}

function withConnectionFlags(c: Command): Command {
  return c
    .requiredOption('--brokers <list>', 'bootstrap brokers, `host:port[,host:port…]`')
    .option('--tls', 'connect over TLS (implied by --ca, --cert, --key)')
    .option('--ca <file>', 'CA certificate(s) to trust, PEM')
    .option('--cert <file>', 'client certificate for mutual TLS, PEM')
    .option('--key <file>', 'private key of --cert, PEM')
    .option('--servername <name>', 'name the broker certificate must carry')
    .option('--insecure', 'accept any broker certificate (tests only)')
    .option('--sasl <mechanism>', 'plain, scram-sha-256, scram-sha-512 or oauthbearer')
    .option('--username <user>', 'SASL user')
    .option('--password-env <VAR>', 'environment variable holding the SASL password')
    .option('--token-env <VAR>', 'oauthbearer: environment variable holding the token')
    .option('--token-command <command>', 'oauthbearer: a command printing the token')
    .option('--token-url <url>', 'oauthbearer: a URL answering with the token')
    .option('--client-id <id>', 'client id the broker logs', 'sluice');
}

/** The env variable `name`, registered as a secret; a `SLUICE_CONFIG` error when unset. */
function secretFromEnv(env: CliIO['env'], name: string, flag: string): string {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`${flag} ${name}\`: the environment variable \`${name}\` is not set`,
    );
  }
  registerSecret(value, `\${${name}}`);
  return value;
}

async function connectionOf(flags: ConnectionFlags, env: CliIO['env']) {
  const { kafkaSecurityFields } = await import('../connectors/kafka/security.ts');
  const { brokerList } = await import('../connectors/kafka/connection.ts');
  const { z } = await import('zod');
  const wantsTls = flags.tls || flags.ca || flags.cert || flags.key || flags.servername || flags.insecure;
  const raw = {
    ...(wantsTls
      ? {
          tls: {
            ...(flags.ca ? { ca: flags.ca } : {}),
            ...(flags.cert ? { cert: flags.cert } : {}),
            ...(flags.key ? { key: flags.key } : {}),
            ...(flags.servername ? { servername: flags.servername } : {}),
            ...(flags.insecure ? { rejectUnauthorized: false } : {}),
          },
        }
      : {}),
    ...(flags.sasl
      ? {
          sasl: {
            mechanism: flags.sasl,
            ...(flags.username ? { username: flags.username } : {}),
            ...(flags.passwordEnv
              ? { password: secretFromEnv(env, flags.passwordEnv, '--password-env') }
              : {}),
            ...(flags.tokenEnv ? { token: secretFromEnv(env, flags.tokenEnv, '--token-env') } : {}),
            ...(flags.tokenCommand ? { tokenCommand: flags.tokenCommand } : {}),
            ...(flags.tokenUrl ? { tokenUrl: flags.tokenUrl } : {}),
          },
        }
      : {}),
  };
  const parsed = z.object(kafkaSecurityFields).safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new SluiceError(ErrorCode.CONFIG, `the connection options are invalid: ${problems}`);
  }
  return { brokers: brokerList(flags.brokers), clientId: flags.clientId, ...parsed.data };
}

/** `key=value` pairs of `--config`, collected. */
const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * Adds `sluice kafka topics …` to `program`. `io` is the command's IO (resolved per call);
 * `setCode` receives the exit code.
 */
export function addKafkaCommands(
  program: Command,
  io: () => Promise<CliIO>,
  setCode: (code: number) => void,
): void {
  const kafka = program.command('kafka').description('Kafka administration: topics.');
  const topics = kafka
    .command('topics')
    .description('Create, list and describe topics (the Kafka admin API).');
  const run = async (fn: (c: CliIO) => Promise<void>) => {
    const c = await io();
    try {
      await fn(c);
      setCode(ExitCode.OK);
    } catch (err) {
      printError(c.stderr, err, c.env);
      setCode(exitCodeOf(err));
    }
  };

  withConnectionFlags(
    topics
      .command('create')
      .description('Create a topic (nothing happens when it exists).')
      .argument('<topic>', 'topic name')
      .option('--partitions <n>', 'partitions', '1')
      .option('--replication-factor <n>', 'replicas of each partition', '1')
      .option('--config <key=value>', 'topic config, e.g. cleanup.policy=compact (repeatable)', collect, []),
  ).action(
    async (
      topic: string,
      opts: ConnectionFlags & { partitions: string; replicationFactor: string; config: string[] },
    ) =>
      run(async (c) => {
        const { ensureTopic, topicSettingsSchema } = await import('../connectors/kafka/topics.ts');
        const config: Record<string, string> = {};
        for (const kv of opts.config) {
          const eq = kv.indexOf('=');
          if (eq <= 0) throw new SluiceError(ErrorCode.CONFIG, `\`--config ${kv}\`: write \`key=value\``);
          config[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
        const settings = topicSettingsSchema.safeParse({
          partitions: Number(opts.partitions),
          replicationFactor: Number(opts.replicationFactor),
          config,
        });
        if (!settings.success) {
          throw new SluiceError(
            ErrorCode.CONFIG,
            settings.error.issues.map((i) => `\`--${i.path.join('.')}\`: ${i.message}`).join('; '),
          );
        }
        const created = await ensureTopic(await connectionOf(opts, c.env), topic, settings.data);
        c.stdout.write(
          created
            ? `Created topic \`${topic}\` (${settings.data.partitions} partitions, replication factor ${settings.data.replicationFactor}).\n`
            : `Topic \`${topic}\` exists already; left as it is.\n`,
        );
      }),
  );

  withConnectionFlags(
    topics
      .command('list')
      .description('List the topics, one per line.')
      .option('--internal', 'include internal topics'),
  ).action(async (opts: ConnectionFlags & { internal?: boolean }) =>
    run(async (c) => {
      const { listTopics } = await import('../connectors/kafka/topics.ts');
      for (const t of await listTopics(await connectionOf(opts, c.env), opts.internal === true))
        c.stdout.write(`${t}\n`);
    }),
  );

  withConnectionFlags(
    topics
      .command('describe')
      .description('Partitions (leader, replicas, in-sync replicas) and configs of a topic.')
      .argument('<topic>', 'topic name')
      .option('--json', 'print JSON'),
  ).action(async (topic: string, opts: ConnectionFlags & { json?: boolean }) =>
    run(async (c) => {
      const { describeTopic } = await import('../connectors/kafka/topics.ts');
      const info = await describeTopic(await connectionOf(opts, c.env), topic);
      if (opts.json) {
        c.stdout.write(`${JSON.stringify(info)}\n`);
        return;
      }
      c.stdout.write(`Topic ${info.name}: ${info.partitions.length} partitions\n`);
      for (const p of info.partitions) {
        c.stdout.write(
          `  partition ${p.partition}  leader ${p.leader}  replicas ${p.replicas.join(',')}  isr ${p.isr.join(',')}\n`,
        );
      }
      for (const [k, v] of Object.entries(info.config)) c.stdout.write(`  ${k}=${v}\n`);
    }),
  );
}
