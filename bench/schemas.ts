/**
 * `npm run bench -- schemas` (or `npx node bench/schemas.ts [--records N] [--runs N]`): records per
 * second decoded and encoded again (decode + encode per record) through Sluice's schema-registry
 * codecs — the `kafka` source's value decoder (Confluent framing, schema by id, natural values:
 * exact decimals, ISO timestamps, exact 64-bit integers) and the `kafka` sink's message encoder —
 * against the bare codec libraries in the same run (`avsc` with plain types, `protobufjs`
 * decode/encode with `toObject`/`fromObject`), and against `JSON.parse` + `JSON.stringify` of the
 * same records. No broker: the codecs are what is measured; the schema comes from an in-memory
 * registry. Runs are interleaved; medians are reported.
 *
 * Ends with `ratio schemas avro-sluice/avsc`, `protobuf-sluice/protobufjs`, `avro-sluice/json`
 * and `protobuf-sluice/json` (above 1: Sluice faster).
 */
import avro from 'avsc';
import protobuf from 'protobufjs';
import { MessageEncoder } from '../src/connectors/kafka/encode.ts';
import { ValueDecoder } from '../src/connectors/kafka/records.ts';
import { type RegisteredSchema, SchemaRegistry } from '../src/formats/schema/registry.ts';
import { numberFlag } from './child.ts';
import { median } from './run.ts';

const AVRO_SCHEMA = JSON.stringify({
  type: 'record',
  name: 'Payment',
  namespace: 'bench',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'user', type: 'string' },
    { name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 } },
    { name: 'currency', type: { type: 'enum', name: 'Currency', symbols: ['EUR', 'USD', 'GBP'] } },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'country', type: 'string' },
    { name: 'risk', type: 'int' },
    { name: 'score', type: 'double' },
    { name: 'flagged', type: 'boolean' },
    { name: 'note', type: ['null', 'string'], default: null },
  ],
});
const PROTO = `syntax = "proto3";
package bench;
import "google/protobuf/timestamp.proto";
message Payment {
  int64 id = 1; string user = 2; string amount = 3;
  enum Currency { EUR = 0; USD = 1; GBP = 2; }
  Currency currency = 4; google.protobuf.Timestamp at = 5; string country = 6;
  int32 risk = 7; double score = 8; bool flagged = 9; string note = 10;
}`;

/** A registry answering from memory (id 1: Avro, id 2: Protobuf). */
class MemoryRegistry extends SchemaRegistry {
  override schemaById(id: number): Promise<RegisteredSchema> {
    return Promise.resolve(
      id === 1
        ? { id, schemaType: 'AVRO', schema: AVRO_SCHEMA, references: [] }
        : { id, schemaType: 'PROTOBUF', schema: PROTO, references: [] },
    );
  }
  override register(): Promise<number> {
    return Promise.resolve(0);
  }
  override subjectVersion(subject: string): Promise<RegisteredSchema> {
    return this.schemaById(subject.startsWith('avro') ? 1 : 2);
  }
}

function records(n: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const cur = ['EUR', 'USD', 'GBP'];
  for (let i = 0; i < n; i++)
    out.push({
      id: 1_000_000 + i,
      user: `user-${i % 5000}`,
      amount: `${i % 10000}.${String(i % 100).padStart(2, '0')}`,
      currency: cur[i % 3],
      at: new Date(1_767_225_600_000 + i * 1000).toISOString(),
      country: ['DE', 'FR', 'US', 'BR'][i % 4],
      risk: i % 100,
      score: (i % 1000) / 7,
      flagged: i % 13 === 0,
      note: i % 5 === 0 ? 'manual review' : null,
    });
  return out;
}

type Run = () => number;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const n = numberFlag(argv, '--records') ?? 200_000;
  const runs = numberFlag(argv, '--runs') ?? 5;
  const recs = records(n);
  const registry = new MemoryRegistry({ url: 'http://127.0.0.1:1' });

  // Sluice, Avro: framed values as a producer writes them.
  const avroEnc = new MessageEncoder({
    topic: 'avro',
    format: 'avro',
    keepHeaders: false,
    schema: { registry },
  });
  await avroEnc.open();
  const avroValues = recs.map((r) => (avroEnc.encode(r, undefined) as { value: Buffer }).value);
  const avroDec = new ValueDecoder('avro', { registry });
  await avroDec.prepare(avroValues[0]);
  // Sluice, Protobuf.
  const pbEnc = new MessageEncoder({
    topic: 'proto',
    format: 'protobuf',
    keepHeaders: false,
    schema: { registry },
  });
  await pbEnc.open();
  const pbValues = recs.map((r) => (pbEnc.encode(r, undefined) as { value: Buffer }).value);
  const pbDec = new ValueDecoder('protobuf', { registry });
  await pbDec.prepare(pbValues[0]);

  // Bare avsc (its own plain types: decimals as Buffers, timestamps as numbers).
  const bareAvro = avro.Type.forSchema(JSON.parse(AVRO_SCHEMA), { wrapUnions: false });
  const bareAvroValues = avroValues.map((v) => v.subarray(5));
  // Bare protobufjs: decode → toObject (longs as strings, enums as names) → fromObject → encode.
  const root = new protobuf.Root();
  root.addJSON(protobuf.common.get('google/protobuf/timestamp.proto')?.nested ?? {});
  protobuf.parse(PROTO.replace(/import .*\n/, ''), root, { keepCase: true });
  const Payment = root.lookupType('bench.Payment');
  const barePbValues = pbValues.map((v) => v.subarray(6));
  const toObj = { longs: String, enums: String, defaults: true };
  // JSON of the same records.
  const jsonValues = recs.map((r) => Buffer.from(JSON.stringify(r)));

  let sink = 0;
  const contenders: Record<string, Run> = {
    'avro-sluice': () => {
      for (const v of avroValues)
        sink += (avroEnc.encode(avroDec.decode(v), undefined) as { value: Buffer }).value.length;
      return avroValues.length;
    },
    avsc: () => {
      for (const v of bareAvroValues) sink += bareAvro.toBuffer(bareAvro.fromBuffer(v)).length;
      return bareAvroValues.length;
    },
    'protobuf-sluice': () => {
      for (const v of pbValues)
        sink += (pbEnc.encode(pbDec.decode(v), undefined) as { value: Buffer }).value.length;
      return pbValues.length;
    },
    protobufjs: () => {
      for (const v of barePbValues)
        sink += Payment.encode(Payment.fromObject(Payment.toObject(Payment.decode(v), toObj))).finish()
          .length;
      return barePbValues.length;
    },
    json: () => {
      for (const v of jsonValues) sink += Buffer.from(JSON.stringify(JSON.parse(v.toString('utf8')))).length;
      return jsonValues.length;
    },
  };
  const rates: Record<string, number[]> = {};
  for (let round = 0; round < runs + 1; round++) {
    for (const [name, run] of Object.entries(contenders)) {
      const t0 = performance.now();
      const count = run();
      const ms = performance.now() - t0;
      if (round === 0) continue; // round 0 warms the JIT
      const list = rates[name] ?? [];
      list.push((count / ms) * 1000);
      rates[name] = list;
    }
  }
  const med = (name: string) => median(rates[name] ?? []);
  process.stdout.write(
    `schemas: decode + encode of ${n} records of 10 fields, ${runs} runs, median records/s\n`,
  );
  for (const name of Object.keys(contenders))
    process.stdout.write(
      `  ${name.padEnd(16)} ${Math.round(med(name)).toLocaleString('en-US').padStart(12)}\n`,
    );
  process.stdout.write(
    `  peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB (checksum ${sink % 1000})\n`,
  );
  const ratio = (a: string, b: string) => `ratio schemas ${a}/${b} ${(med(a) / med(b)).toFixed(2)}\n`;
  process.stdout.write(ratio('avro-sluice', 'avsc'));
  process.stdout.write(ratio('protobuf-sluice', 'protobufjs'));
  process.stdout.write(ratio('avro-sluice', 'json'));
  process.stdout.write(ratio('protobuf-sluice', 'json'));
}

await main();
