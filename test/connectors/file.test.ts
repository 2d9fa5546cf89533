/** The `file` source and sink run the connector conformance suite (no service needed). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectorConformance, fileOutput, type InputItem, jsonLines, padded } from './conformance.ts';

/** JSON Lines text of `items`; a bad item is a line that is not JSON. */
const lines = (items: readonly InputItem[]) =>
  items.map((it) => ('bad' in it ? `{"id": ${it.bad}}\n` : `${JSON.stringify(padded(it))}\n`)).join('');

connectorConformance({
  name: 'file',
  source: {
    async create(dir) {
      writeFileSync(join(dir, 'input.jsonl'), '');
      return 'input.jsonl';
    },
    // Small batches, padded records: a draining stop finishes what was read (at least a 64 KiB chunk).
    input: (place) => ({ file: { path: place, format: 'jsonl', batchSize: 50 } }),
    async write(place, items, dir) {
      const path = join(dir, place);
      writeFileSync(path, readFileSync(path, 'utf8') + lines(items));
    },
    // A checkpoint holds the byte offset and line: a restart resumes right after them.
    delivery: 'exactly-once',
    ends: 'at-end',
    remembers: false,
    badInput: {
      // Items are written from an empty file, one line each: item i is on line i + 1.
      position: (place, index, dir) => ({ file: join(dir, place), line: index + 1 }),
    },
  },
  sink: {
    async create() {
      return 'written.jsonl';
    },
    output: (place) => ({ file: { path: place, format: 'jsonl' } }),
    // The final file appears only at a clean end (or a drained stop): read nothing before it.
    async read(place, dir) {
      return jsonLines(join(dir, place));
    },
    async progress(place, dir) {
      return fileOutput(join(dir, place)).length;
    },
    // Under checkpoints the sink cuts its temporary file back to the checkpoint and continues it.
    delivery: 'exactly-once',
    acceptsAll: 'JSON Lines encodes every record',
  },
});
