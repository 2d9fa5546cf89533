/**
 * The YAML layer of pipeline files: parsing with source ranges, `${VAR}` interpolation,
 * `--set` overrides, and mapping a config path back to a line and column.
 */
import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type Scalar,
  visit,
} from 'yaml';
import { registerSecret } from '../core/secrets.ts';
import { urlPasswords } from '../core/url.ts';
import { type ConfigProblem, formatPath } from '../spec/problems.ts';

const VAR_REF = `$${'{VAR}'}`;
const QUOTE_HINT = `; inside \`{ }\` or \`[ ]\` a \`${VAR_REF}\` must be quoted: \`"${VAR_REF}"\` (or use block style, one key per line)`;

/** A parsed YAML document with what is needed to point at its lines. */
export interface SourceDocument {
  /** The file name used in problems. */
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
}

/** A 1-based line and column. */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/**
 * Parses YAML text, keeping node ranges. Syntax errors (and duplicate keys) come back as
 * problems with their line and column; the document is only usable when there are none.
 */
export function parseSource(
  text: string,
  file: string,
): { source: SourceDocument; problems: ConfigProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  // After the first syntax error the parser often reports many that follow from it; show the
  // first, and the duplicate keys, which are independent of each other.
  const errors = doc.errors.filter((e, i) => i === 0 || e.code === 'DUPLICATE_KEY');
  const more = doc.errors.length - errors.length;
  for (const e of [...errors, ...doc.warnings]) {
    const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
    // The pretty message repeats the position and a snippet; the first sentence is enough.
    let message = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
    const lineText = text.split('\n')[pos.line - 1] ?? '';
    if (lineText.includes('${') && /[{[]/.test(lineText.replace(/\$\{[^}]*\}/g, ''))) {
      message += QUOTE_HINT;
    }
    if (e === errors[0] && more > 0)
      message += ` (${more} more YAML error${more === 1 ? '' : 's'} after this one, likely caused by it)`;
    problems.push({
      severity: e.name === 'YAMLWarning' ? 'warning' : 'error',
      file,
      line: pos.line,
      column: pos.col,
      path: '',
      message: `invalid YAML: ${message}`,
    });
  }
  return { source: { file, doc, lines }, problems };
}

/** Environment variables as `process.env` holds them. */
export type Env = Readonly<Record<string, string | undefined>>;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Expands `${VAR}` and `${VAR:-default}` in `text` from `env`; `$${` stands for a literal
 * `${`. The default applies when the variable is unset or empty. Returns the expanded text
 * or the problems found (unset variable, malformed reference). `onVariable` is called with
 * each variable whose value was used.
 *
 * @example
 * interpolate('${HOME}/in.jsonl', { HOME: '/h' }); // { value: '/h/in.jsonl', errors: [] }
 */
export function interpolate(
  text: string,
  env: Env,
  onVariable?: (name: string, value: string) => void,
): { value: string; errors: string[] } {
  const errors: string[] = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    const at = text.indexOf('$', i);
    if (at < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, at);
    if (text.startsWith('$${', at)) {
      out += '${';
      i = at + 3;
      continue;
    }
    if (!text.startsWith('${', at)) {
      out += '$';
      i = at + 1;
      continue;
    }
    const end = text.indexOf('}', at + 2);
    if (end < 0) {
      errors.push(
        `unterminated \`\${\` in \`${text}\`; close it with \`}\` or write \`$\${\` for a literal \`\${\``,
      );
      out += text.slice(at);
      break;
    }
    const body = text.slice(at + 2, end);
    const sep = body.indexOf(':-');
    const name = sep < 0 ? body : body.slice(0, sep);
    if (!NAME.test(name)) {
      errors.push(
        `\`\${${body}}\` is not a valid variable reference; use \`\${NAME}\` or \`\${NAME:-default}\` (write \`$\${\` for a literal \`\${\`)`,
      );
    } else {
      const value = env[name];
      if (value !== undefined && (value !== '' || sep < 0)) {
        out += value;
        onVariable?.(name, value);
      } else if (sep >= 0) out += body.slice(sep + 2);
      else
        errors.push(
          `environment variable \`${name}\` is not set; set it or give a default: \`\${${name}:-value}\``,
        );
    }
    i = end + 1;
  }
  return { value: out, errors };
}

/**
 * Expands environment variables in every scalar value of the document (not in keys), in
 * place. A plain (unquoted) scalar is re-read after expansion, so `size: ${N:-100}` is a
 * number; a quoted one stays a string.
 *
 * Values taken from variables are secrets (see `core/secrets.ts`): each is registered for
 * redaction, with the password of a URL among them, and `substituted` (when given) receives
 * the config path of every scalar that took a variable's value, with the text written in the
 * file (`dlq.postgres.url` → `${PG_URL}`), so that problems can name it instead of the value.
 */
export function interpolateDocument(
  source: SourceDocument,
  env: Env,
  substituted?: Map<string, string>,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  visit(source.doc, {
    Scalar(key, node, path) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      let used = false;
      const { value, errors } = interpolate(node.value, env, (name, v) => {
        used = true;
        registerSecret(v, `\${${name}}`);
        for (const password of urlPasswords(v)) registerSecret(password, '***');
      });
      const pos = positionOf(source, node);
      const at = pathOfVisit(path, node);
      for (const message of errors) {
        problems.push({
          severity: 'error',
          file: source.file,
          ...pos,
          path: at,
          message,
        });
      }
      if (used) {
        substituted?.set(at, node.value);
        for (const password of urlPasswords(value)) registerSecret(password, '***');
      }
      if (value === node.value) return;
      node.value = node.type === 'PLAIN' ? reresolve(value) : value;
    },
  });
  return problems;
}

/** The value a plain YAML scalar `text` would have (`100` → 100, `true` → true), else the text. */
function reresolve(text: string): unknown {
  if (text === '') return text;
  const d = parseDocument(text);
  if (d.errors.length === 0 && isScalar(d.contents) && d.contents.value !== null) return d.contents.value;
  return text;
}

/** The config path of a node reached by `visit`, from the ancestors it passes. */
function pathOfVisit(ancestors: readonly unknown[], node: unknown): string {
  const segs: PropertyKey[] = [];
  const chain = [...ancestors, node];
  for (let i = 1; i < chain.length; i++) {
    const parent = chain[i - 1];
    const child = chain[i];
    if (isSeq(parent)) segs.push(parent.items.indexOf(child as never));
    else if (isPair(parent) && isScalar(parent.key) && parent.value === child)
      segs.push(String(parent.key.value));
  }
  return formatPath(segs);
}

/**
 * Applies `--set path=value` overrides to the document: `path` is dotted with `[n]` (or `.n`)
 * for list items (`pipeline[0].batch.size=10`); `value` is read as YAML (`10` is a number,
 * `{path: x}` a map, `'10'` a string).
 */
export function applyOverrides(source: SourceDocument, sets: readonly string[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const set of sets) {
    const eq = set.indexOf('=');
    const path = eq > 0 ? parseSetPath(set.slice(0, eq)) : undefined;
    if (eq <= 0 || path === undefined) {
      problems.push({
        severity: 'error',
        file: source.file,
        path: '',
        message: `--set \`${set}\` is not \`path=value\` (e.g. \`--set pipeline[0].batch.size=10\`)`,
      });
      continue;
    }
    const text = set.slice(eq + 1);
    const parsed = parseDocument(text);
    // A fresh node without source ranges: problems with it point at its parent in the file.
    try {
      const value = source.doc.createNode(
        parsed.errors.length === 0 && parsed.contents !== null ? parsed.toJS({ maxAliasCount: 100 }) : text,
      );
      source.doc.setIn(path, value);
    } catch (err) {
      problems.push({
        severity: 'error',
        file: source.file,
        path: formatPath(path),
        message: `--set cannot set \`${set.slice(0, eq)}\`: ${(err as Error).message}`,
      });
    }
  }
  return problems;
}

/** What a `--set` put into the document that the file did not have. */
export interface SetOrigin {
  /** The argument's path, as given (`output.file.pth`); never its value, which may be a secret. */
  readonly arg: string;
  /** The config path from which on the document holds the argument's doing, not the file's. */
  readonly from: string;
}

/**
 * For each `--set` of `sets`, called before they are applied: where its doing starts — the first
 * segment of its path the file lacks (`outptu` of `outptu.file.path`), or its whole path when
 * the file has it (the argument replaces that value).
 */
export function overrideOrigins(source: SourceDocument, sets: readonly string[]): SetOrigin[] {
  const origins: SetOrigin[] = [];
  for (const set of sets) {
    const eq = set.indexOf('=');
    const path = eq > 0 ? parseSetPath(set.slice(0, eq)) : undefined;
    if (path === undefined) continue;
    let have = 0;
    while (have < path.length && source.doc.hasIn(path.slice(0, have + 1))) have++;
    origins.push({ arg: set.slice(0, eq), from: formatPath(path.slice(0, Math.min(have + 1, path.length))) });
  }
  return origins;
}

/**
 * `problems`, those a `--set` caused (at or under where its doing starts) located at the
 * argument (`pipeline.yaml (--set output.file.pth)`) instead of at a place in the file that
 * does not hold the mistake.
 */
export function locateSetProblems(
  problems: readonly ConfigProblem[],
  origins: readonly SetOrigin[],
): ConfigProblem[] {
  if (origins.length === 0) return [...problems];
  return problems.map((p) => {
    const o = origins.findLast(
      (x) => p.path === x.from || p.path.startsWith(`${x.from}.`) || p.path.startsWith(`${x.from}[`),
    );
    if (o === undefined) return p;
    const { line: _line, column: _column, ...rest } = p;
    return { ...rest, file: `${p.file} (--set ${o.arg})` };
  });
}

function parseSetPath(text: string): PropertyKey[] | undefined {
  const segs: PropertyKey[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    const between = text.slice(consumed, m.index);
    if (between !== '' && between !== '.') return undefined;
    consumed = m.index + m[0].length;
    if (m[2] !== undefined) segs.push(Number(m[2]));
    else segs.push(/^\d+$/.test(m[1] as string) ? Number(m[1]) : (m[1] as string));
  }
  if (consumed !== text.length || segs.length === 0) return undefined;
  return segs;
}

/** The line and column where `node` starts, when it came from the source text. */
export function positionOf(
  source: SourceDocument,
  node: { range?: unknown } | null | undefined,
): Partial<SourcePosition> {
  const range = node?.range as [number, number, number] | undefined | null;
  if (!range) return {};
  const { line, col } = source.lines.linePos(range[0]);
  return { line, column: col };
}

/**
 * Where a config path points in the source. With `at: 'key'` it points at the key of the
 * last segment (for unknown fields); otherwise at the value. When the path does not exist
 * (a missing field), it points at the key of the deepest part that does.
 */
export function locate(
  source: SourceDocument,
  path: readonly PropertyKey[],
  at: 'key' | 'value' = 'value',
): Partial<SourcePosition> {
  let node: unknown = source.doc.contents;
  let lastKey: Node | undefined;
  let best: Partial<SourcePosition> = positionOf(source, node as Node);
  for (let i = 0; i < path.length; i++) {
    if (isAlias(node)) node = node.resolve(source.doc);
    const seg = path[i];
    let next: unknown;
    let key: Node | undefined;
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => (isScalar(p.key) ? String((p.key as Scalar).value) : p.key) === String(seg),
      );
      if (pair) {
        next = pair.value;
        key = pair.key as Node;
      }
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    }
    if (next === undefined && key === undefined) {
      return lastKey ? { ...best, ...positionOf(source, lastKey) } : best;
    }
    lastKey = key;
    if (i === path.length - 1 && at === 'key' && key) return { ...best, ...positionOf(source, key) };
    const pos = positionOf(source, (next ?? key) as Node);
    if (pos.line !== undefined) best = pos;
    node = next;
  }
  return best;
}
