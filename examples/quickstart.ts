/**
 * The quickstart as TypeScript: synthetic login events → keep the risky logins → add a field
 * → a JSON Lines file. Run: `npx node examples/quickstart.ts` (or `npx sluice run examples/quickstart.ts`).
 * In your own project, import from 'sluice' instead of '../src/index.ts'.
 */
import { fileSink, generateSource, Pipeline } from '../src/index.ts';

const out = new URL('./out/', import.meta.url);
const p = new Pipeline('quickstart-ts');
p.from(generateSource({ count: 200_000, seed: 42 }))
  .filter((e) => (e.risk ?? 0) > 50 && e.event_type === 'login')
  .map((e) => ({ ...e, risk_band: (e.risk ?? 0) >= 90 ? 'critical' : 'high' }))
  .to(fileSink({ path: new URL('risky-logins-ts.jsonl', out).pathname, format: 'jsonl' }));
p.dlq(fileSink({ path: new URL('dead-letters-ts.jsonl', out).pathname, format: 'jsonl' }));

export default p;

// Run directly (`node examples/quickstart.ts`); `sluice run` imports it and runs it itself.
if (import.meta.main) {
  const summary = await p.run().done;
  console.log(`${summary.recordsWritten} records written to examples/out/risky-logins-ts.jsonl`);
}
