/**
 * Component specs of the CEL steps for pipeline files: `filter`, `map` and `route`.
 *
 * ```yaml
 * pipeline:
 *   - filter: 'risk > 50 && event_type == "login" && country in ["US", "DE"]'
 *   - map: { fields: { total: 'price * qty' }, drop: [tmp] }
 *   - route: { cases: [{ when: 'risk > 90', to: high }], default: out }
 * ```
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { durationField } from '../spec/fields.ts';
import { type BuildContext, defineComponent } from '../spec/registry.ts';
import { CelFilter, CelMap, CelRoute } from './cel-operators.ts';
import { DEFAULT_EXPR_LIMITS, type ExprLimits } from './limits.ts';
import type { RulesSourceOptions } from './reload.ts';
import { fieldName, routeCaseSchema } from './rules.ts';

/** Schema of `rules:` — where a reloadable rule set lives. */
export const rulesSourceSchema = z
  .object({
    file: z
      .string()
      .min(1)
      .optional()
      .describe('YAML or JSON rule-set file, relative to the pipeline file; watched for changes.'),
    url: z.string().url().optional().describe('http(s) URL of a rule set; polled with If-None-Match/ETag.'),
    pollInterval: durationField()
      .optional()
      .describe('How often to check for a new set (default 1s for a file, 30s for a URL).'),
    allowInsecure: z
      .boolean()
      .optional()
      .describe(
        'Allow a plain http:// `url` to a host other than the loopback (localhost, 127.x, ::1), where anyone on the path can read or change the rules (default false).',
      ),
    maxBytes: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        'Largest rule set accepted, in bytes; an HTTP body is cut off as soon as it passes it (default 1 MiB).',
      ),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'a SHA-256 is 64 hex digits, as `sha256sum FILE` prints')
      .optional()
      .describe(
        'SHA-256 (hex) the rule-set text must have; any other text is refused and the running set stays.',
      ),
  })
  .strict()
  .refine((r) => (r.file === undefined) !== (r.url === undefined), {
    message: 'give exactly one of `file` and `url`',
  })
  .describe(
    'A reloadable rule set (see src/expr/README.md): a new version is compiled, then swapped in between batches.',
  );

/** Schema of `limits:` — compile-time bounds on expressions. */
export const exprLimitsSchema = z
  .object({
    maxLength: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(`Longest expression, in characters (default ${DEFAULT_EXPR_LIMITS.maxLength}).`),
    maxNodes: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(`Most syntax-tree nodes (default ${DEFAULT_EXPR_LIMITS.maxNodes}).`),
    maxDepth: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(`Deepest nesting (default ${DEFAULT_EXPR_LIMITS.maxDepth}).`),
    maxComprehensions: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe(`Most comprehensions (default ${DEFAULT_EXPR_LIMITS.maxComprehensions}).`),
    maxComprehensionNesting: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe(`Deepest comprehension nesting (default ${DEFAULT_EXPR_LIMITS.maxComprehensionNesting}).`),
    maxLiteralElements: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(`Largest list/map literal (default ${DEFAULT_EXPR_LIMITS.maxLiteralElements}).`),
    maxStringLiteral: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(`Longest string literal (default ${DEFAULT_EXPR_LIMITS.maxStringLiteral}).`),
    maxEvalSteps: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        `Runtime budget of one evaluation: function calls plus comprehension iterations; a record that needs more goes to the DLQ, and the compile-time estimate must fit it (default ${DEFAULT_EXPR_LIMITS.maxEvalSteps}).`,
      ),
    maxEvalSize: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        `Runtime budget of one evaluation: characters and list/map elements the expression produces; a record that needs more goes to the DLQ, and the compile-time estimate must fit it (default ${DEFAULT_EXPR_LIMITS.maxEvalSize}).`,
      ),
  })
  .strict()
  .describe(
    'Limits on the cost of expressions: compile-time bounds and the runtime budget of one evaluation.',
  );

type RulesConfig = z.output<typeof rulesSourceSchema>;
type LimitsConfig = z.output<typeof exprLimitsSchema>;

function rulesOptions(rules: RulesConfig | undefined, ctx: BuildContext): RulesSourceOptions | undefined {
  if (rules === undefined) return undefined;
  const { pollInterval, maxBytes, sha256 } = rules;
  const common = { pollInterval, maxBytes, sha256 };
  if (rules.file !== undefined) {
    return { file: isAbsolute(rules.file) ? rules.file : resolve(ctx.baseDir, rules.file), ...common };
  }
  return { url: rules.url, allowInsecure: rules.allowInsecure, ...common };
}

function limitsOptions(limits: LimitsConfig | undefined): Partial<ExprLimits> | undefined {
  if (limits === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(limits)) if (v !== undefined) out[k] = v;
  return out as Partial<ExprLimits>;
}

/** `filter`: keeps the records for which a CEL condition is true. */
export const filterSpec = defineComponent({
  name: 'filter',
  kind: 'operator',
  stability: 'beta',
  summary: 'Keeps the records for which a CEL condition is true; a record it fails on goes to the DLQ.',
  description:
    'Each top-level field of the record is a variable (`risk > 50`), the whole record is `record` and its metadata `meta`. ' +
    'Write the condition as a string, or `{ expr, rules }` to load it from a reloadable rule set.',
  config: z.union([
    z.string().min(1).describe('The CEL condition.'),
    z
      .object({
        expr: z
          .string()
          .min(1)
          .optional()
          .describe('The CEL condition (with `rules`: used when the rule source cannot be read at startup).'),
        rules: rulesSourceSchema.optional(),
        limits: exprLimitsSchema.optional(),
      })
      .strict()
      .refine((c) => c.expr !== undefined || c.rules !== undefined, { message: 'give `expr` or `rules`' }),
  ]),
  examples: [
    {
      title: 'Logins from two countries',
      yaml: `'risk > 50 && event_type == "login" && country in ["US", "DE"]'`,
    },
    { title: 'Hot-reloaded from a file', yaml: 'rules: { file: rules.yaml, pollInterval: 5s }' },
  ],
  create(config, ctx) {
    if (typeof config === 'string') return new CelFilter(config);
    return new CelFilter({
      expr: config.expr,
      rules: rulesOptions(config.rules, ctx),
      limits: limitsOptions(config.limits),
    });
  },
});

/** `map`: adds fields computed by CEL expressions. */
export const mapSpec = defineComponent({
  name: 'map',
  kind: 'operator',
  stability: 'beta',
  summary:
    'Adds fields computed by CEL expressions to each record (as a new record); a record it fails on goes to the DLQ.',
  config: z
    .object({
      fields: z
        .record(fieldName, z.string().min(1))
        .optional()
        .describe('Computed fields: name → CEL expression over the input record.'),
      drop: z
        .array(z.string())
        .optional()
        .describe('Fields to remove from the output record (computed fields are set after).'),
      rules: rulesSourceSchema.optional(),
      limits: exprLimitsSchema.optional(),
    })
    .strict()
    .refine((c) => c.fields !== undefined || c.rules !== undefined, { message: 'give `fields` or `rules`' }),
  examples: [
    {
      title: 'Order total',
      yaml: "fields: { total: 'price * qty', big: 'price * qty > 1000.0' }\ndrop: [internal]",
    },
  ],
  create(config, ctx) {
    return new CelMap({
      fields: config.fields,
      drop: config.drop,
      rules: rulesOptions(config.rules, ctx),
      limits: limitsOptions(config.limits),
    });
  },
});

/** `route`: sends each record to the output of the first matching case. */
export const routeSpec = defineComponent({
  name: 'route',
  kind: 'operator',
  stability: 'beta',
  summary:
    'Sends each record to the output named by the first case whose CEL condition is true, else to `default`, else to the DLQ.',
  description:
    'A case `to: out` continues the main stream; any other name must be a pipeline output under `outputs:`.',
  config: z
    .object({
      cases: z.array(routeCaseSchema).optional().describe('Cases, tried in order.'),
      default: z
        .string()
        .min(1)
        .optional()
        .describe('Output for records no case matches; without it they go to the DLQ.'),
      rules: rulesSourceSchema.optional(),
      limits: exprLimitsSchema.optional(),
    })
    .strict()
    .refine((c) => c.cases !== undefined || c.rules !== undefined, { message: 'give `cases` or `rules`' }),
  examples: [
    { title: 'High risk to alerts', yaml: "cases:\n  - { when: 'risk > 90', to: alerts }\ndefault: out" },
  ],
  // The outputs the cases name, so `sluice lint` reports one `outputs:` lacks (`to: critcal`);
  // unknown with hot-reloaded `rules`, whose routes can change while running.
  ports: (config) =>
    config.rules !== undefined
      ? undefined
      : [...new Set([...(config.cases ?? []).map((c) => c.to), config.default])].filter(
          (p): p is string => p !== undefined && p !== 'out',
        ),
  create(config, ctx) {
    return new CelRoute({
      cases: config.cases,
      default: config.default,
      rules: rulesOptions(config.rules, ctx),
      limits: limitsOptions(config.limits),
    });
  },
});

/** The three CEL step specs, for the registry. */
export const exprSpecs = [filterSpec, mapSpec, routeSpec] as const;
