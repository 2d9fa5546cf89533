/**
 * A thin client of a schema registry's Confluent-compatible REST API (Confluent Schema Registry,
 * Apicurio's `/apis/ccompat/v7`, Redpanda, Karapace): fetch a schema by id (with its
 * references), look up the latest or a pinned version of a subject, register a schema.
 *
 * Why our own: `@kafkajs/confluent-schema-registry` writes Protobuf without message indexes and
 * decodes a non-first message as `{}`; `@confluentinc/schemaregistry` frames correctly but brings
 * ~170 MB of cloud-KMS SDKs, takes ~1.2 s to import and its Protobuf path fails against Apicurio
 * (see shared/LIBRARIES.md). What a pipeline needs is five GET/POST calls and a cache.
 *
 * Contract: schemas by id are immutable, so they are cached for the client's life (a
 * concurrent second request for one id shares the first's promise); subject lookups (latest
 * version) are cached for `latestTtl`. Requests that fail for a reason a retry can cure (no
 * connection, timeout, 5xx, 429) are retried with exponential backoff up to `retries` times,
 * then fail with a retryable {@link SchemaRegistryError}; 401/403 (credentials), 404 (unknown
 * id or subject), 409 (incompatible schema) and 422 (invalid schema) fail at once.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ErrorCode, SluiceError } from '../../core/errors.ts';

/** The kinds of schema a registry holds (`schemaType`; absent means AVRO). */
export type SchemaType = 'AVRO' | 'PROTOBUF' | 'JSON';

/** A reference from one schema to another (Protobuf imports, Avro named types, JSON `$ref`). */
export interface SchemaReference {
  /** The name the referring schema uses: the import path, the full type name or the `$ref`. */
  readonly name: string;
  readonly subject: string;
  readonly version: number;
}

/** A schema as the registry returns it. */
export interface RegisteredSchema {
  readonly id: number;
  readonly schemaType: SchemaType;
  /** The schema text (Avro JSON, `.proto` source, JSON Schema). */
  readonly schema: string;
  readonly references: readonly SchemaReference[];
  /** Set when looked up through a subject. */
  readonly subject?: string;
  readonly version?: number;
}

/** How to reach and authenticate to the registry. */
export interface SchemaRegistryOptions {
  /** Base URL of the Confluent-compatible API, e.g. `http://127.0.0.1:8081/apis/ccompat/v7`. */
  readonly url: string;
  /** Basic auth. */
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** Bearer token (sent as `Authorization: Bearer …`). */
  readonly token?: string | undefined;
  /** TLS: extra CA certificates, client certificate and key (PEM text). */
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** TLS: accept a server certificate that does not verify (tests only). */
  readonly insecure?: boolean | undefined;
  /** Attempts after the first for a retryable failure. Default 5. */
  readonly retries?: number | undefined;
  /** First backoff delay, ms, doubled per attempt up to `maxRetryDelay`. Default 200. */
  readonly retryDelay?: number | undefined;
  readonly maxRetryDelay?: number | undefined;
  /** Per-request timeout, ms. Default 10 000. */
  readonly timeout?: number | undefined;
  /** How long a subject's latest version is trusted, ms. Default 60 000. */
  readonly latestTtl?: number | undefined;
}

/** Why a registry call failed; `status` is the HTTP status (0 when no answer came). */
export class SchemaRegistryError extends SluiceError {
  readonly status: number;
  /** The registry's `error_code` (40401 subject not found, 40403 schema not found, 409…). */
  readonly registryCode: number | undefined;

  constructor(
    message: string,
    status: number,
    registryCode: number | undefined,
    retryable: boolean,
    cause?: unknown,
  ) {
    super(ErrorCode.STAGE, message, { status, registryCode }, { cause, retryable });
    this.status = status;
    this.registryCode = registryCode;
  }
}

/** True for a {@link SchemaRegistryError}, also across two loaded copies of the package. */
export function isSchemaRegistryError(err: unknown): err is SchemaRegistryError {
  return (
    err instanceof Error && typeof (err as { status?: unknown }).status === 'number' && 'registryCode' in err
  );
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** The client; one per pipeline component, shared by its partitions. */
export class SchemaRegistry {
  private readonly base: URL;
  private readonly options: SchemaRegistryOptions;
  private readonly byId = new Map<number, Promise<RegisteredSchema>>();
  private readonly latest = new Map<string, { at: number; schema: Promise<RegisteredSchema> }>();
  private readonly versions = new Map<string, Promise<RegisteredSchema>>();
  private readonly registered = new Map<string, Promise<number>>();
  /** Requests made (for tests and metrics). */
  requests = 0;

  constructor(options: SchemaRegistryOptions) {
    this.options = options;
    try {
      this.base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    } catch {
      throw new SluiceError(ErrorCode.CONFIG, `schema registry url \`${options.url}\` is not a URL`);
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:')
      throw new SluiceError(
        ErrorCode.CONFIG,
        `schema registry url \`${options.url}\` must start with http:// or https://`,
      );
  }

  /** The URL shown in messages (no credentials). */
  get url(): string {
    return `${this.base.origin}${this.base.pathname.replace(/\/$/, '')}`;
  }

  /** The schema with `id` (cached forever: ids are immutable). */
  schemaById(id: number): Promise<RegisteredSchema> {
    let p = this.byId.get(id);
    if (p === undefined) {
      p = this.get(`schemas/ids/${id}`, `fetching schema id ${id}`).then((r) => toSchema(r, id));
      p.catch(() => this.byId.delete(id));
      this.byId.set(id, p);
    }
    return p;
  }

  /** The given version (a number, or `latest`) of `subject`. Latest is cached for `latestTtl`. */
  subjectVersion(subject: string, version: number | 'latest' = 'latest'): Promise<RegisteredSchema> {
    if (version === 'latest') {
      const hit = this.latest.get(subject);
      const now = Date.now();
      if (hit !== undefined && now - hit.at < (this.options.latestTtl ?? 60_000)) return hit.schema;
      const p = this.fetchVersion(subject, 'latest');
      p.catch(() => this.latest.delete(subject));
      this.latest.set(subject, { at: now, schema: p });
      return p;
    }
    const key = `${subject}\u0000${version}`;
    let p = this.versions.get(key);
    if (p === undefined) {
      p = this.fetchVersion(subject, version);
      p.catch(() => this.versions.delete(key));
      this.versions.set(key, p);
    }
    return p;
  }

  private async fetchVersion(subject: string, version: number | 'latest'): Promise<RegisteredSchema> {
    const r = await this.get(
      `subjects/${encodeURIComponent(subject)}/versions/${version}`,
      `fetching version ${version} of subject \`${subject}\``,
    );
    const s = toSchema(r, undefined);
    this.byId.set(s.id, Promise.resolve(s));
    return s;
  }

  /**
   * Registers `schema` under `subject` (or finds it when already there) and returns its id.
   * A registry that rejects it as incompatible answers 409: the error says so and names the subject.
   */
  register(
    subject: string,
    schemaType: SchemaType,
    schema: string,
    references: readonly SchemaReference[] = [],
  ): Promise<number> {
    const key = `${subject}\u0000${schemaType}\u0000${schema}`;
    let p = this.registered.get(key);
    if (p === undefined) {
      const body: Record<string, unknown> = { schema };
      if (schemaType !== 'AVRO') body.schemaType = schemaType;
      if (references.length > 0) body.references = references;
      p = this.call(
        'POST',
        `subjects/${encodeURIComponent(subject)}/versions`,
        `registering a schema under subject \`${subject}\``,
        JSON.stringify(body),
      ).then((r) => {
        const id = (JSON.parse(r.body) as { id?: unknown }).id;
        if (typeof id !== 'number')
          throw new SchemaRegistryError(
            `the registry answered no id when registering under \`${subject}\``,
            r.status,
            undefined,
            false,
          );
        return id;
      });
      p.catch(() => this.registered.delete(key));
      this.registered.set(key, p);
    }
    return p;
  }

  /**
   * The id `schema` has in the registry, looked up under the subjects schema `relatedId` is
   * registered in (best effort, for error messages: undefined when not found or on any failure).
   */
  async idOf(schemaType: SchemaType, schema: string, relatedId: number): Promise<number | undefined> {
    try {
      const r = await this.get(
        `schemas/ids/${relatedId}/versions`,
        `listing the subjects of schema id ${relatedId}`,
      );
      for (const { subject } of JSON.parse(r.body) as { subject: string }[]) {
        const body: Record<string, unknown> = { schema };
        if (schemaType !== 'AVRO') body.schemaType = schemaType;
        const found = await this.call(
          'POST',
          `subjects/${encodeURIComponent(subject)}`,
          'looking up a schema',
          JSON.stringify(body),
        ).catch(() => undefined);
        const id = found === undefined ? undefined : (JSON.parse(found.body) as { id?: unknown }).id;
        if (typeof id === 'number') return id;
      }
    } catch {}
    return undefined;
  }

  /** The schemas `refs` name, recursively, keyed by reference name (what an import resolves to). */
  async references(
    refs: readonly SchemaReference[],
    into = new Map<string, RegisteredSchema>(),
  ): Promise<Map<string, RegisteredSchema>> {
    for (const ref of refs) {
      if (into.has(ref.name)) continue;
      const s = await this.subjectVersion(ref.subject, ref.version);
      into.set(ref.name, s);
      await this.references(s.references, into);
    }
    return into;
  }

  private get(path: string, doing: string): Promise<Answer> {
    return this.call('GET', path, doing);
  }

  /** One request with retries; resolves on 2xx, throws a {@link SchemaRegistryError} otherwise. */
  private async call(method: string, path: string, doing: string, body?: string): Promise<Answer> {
    const retries = this.options.retries ?? 5;
    let delay = this.options.retryDelay ?? 200;
    for (let attempt = 0; ; attempt++) {
      let err: SchemaRegistryError;
      try {
        const r = await this.send(method, path, body);
        if (r.status >= 200 && r.status < 300) return r;
        err = statusError(r, doing, this.url);
      } catch (e) {
        err = new SchemaRegistryError(
          `${doing}: the schema registry at ${this.url} did not answer (${(e as Error).message}); is it running?`,
          0,
          undefined,
          true,
          e,
        );
      }
      if (!err.retryable || attempt >= retries) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, this.options.maxRetryDelay ?? 5000);
    }
  }

  private send(method: string, path: string, body: string | undefined): Promise<Answer> {
    const url = new URL(path, this.base);
    const o = this.options;
    const headers: Record<string, string> = {
      accept: 'application/vnd.schemaregistry.v1+json, application/json',
    };
    if (body !== undefined) headers['content-type'] = 'application/vnd.schemaregistry.v1+json';
    if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
    else if (o.username !== undefined)
      headers.authorization = `Basic ${Buffer.from(`${o.username}:${o.password ?? ''}`).toString('base64')}`;
    const tls = url.protocol === 'https:';
    const request = tls ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          headers,
          timeout: o.timeout ?? 10_000,
          ...(tls ? { ca: o.ca, cert: o.cert, key: o.key, rejectUnauthorized: o.insecure !== true } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      this.requests++;
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }
}

function statusError(r: Answer, doing: string, url: string): SchemaRegistryError {
  let code: number | undefined;
  let message = r.body.slice(0, 300);
  try {
    const j = JSON.parse(r.body) as { error_code?: number; message?: string };
    code = j.error_code;
    if (typeof j.message === 'string') message = j.message;
  } catch {}
  const s = r.status;
  if (s === 401 || s === 403)
    return new SchemaRegistryError(
      `${doing}: the schema registry at ${url} refused the credentials (HTTP ${s}); check \`schemaRegistry.username\`/\`password\` or \`token\``,
      s,
      code,
      false,
    );
  if (s === 404)
    return new SchemaRegistryError(
      `${doing}: not found in the schema registry at ${url} (${message})`,
      s,
      code,
      false,
    );
  if (s === 409)
    return new SchemaRegistryError(
      `${doing}: the schema registry rejected the schema as incompatible with the subject's earlier versions (${message}); make the change compatible or change the subject's compatibility level`,
      s,
      code,
      false,
    );
  if (s === 422)
    return new SchemaRegistryError(
      `${doing}: the schema registry rejected the schema as invalid (${message})`,
      s,
      code,
      false,
    );
  return new SchemaRegistryError(
    `${doing}: the schema registry at ${url} answered HTTP ${s} (${message})`,
    s,
    code,
    s >= 500 || s === 429 || s === 408,
  );
}

function toSchema(r: Answer, id: number | undefined): RegisteredSchema {
  const j = JSON.parse(r.body) as {
    id?: number;
    schema?: string;
    schemaType?: string;
    references?: SchemaReference[];
    subject?: string;
    version?: number;
  };
  const sid = id ?? j.id;
  if (typeof j.schema !== 'string' || typeof sid !== 'number')
    throw new SchemaRegistryError(
      'the schema registry answered without a schema',
      r.status,
      undefined,
      false,
    );
  const schemaType = (j.schemaType ?? 'AVRO').toUpperCase() as SchemaType;
  const out: { -readonly [K in keyof RegisteredSchema]: RegisteredSchema[K] } = {
    id: sid,
    schemaType,
    schema: j.schema,
    references: j.references ?? [],
  };
  if (j.subject !== undefined) out.subject = j.subject;
  if (j.version !== undefined) out.version = j.version;
  return out;
}
