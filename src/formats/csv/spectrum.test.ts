/**
 * The csv-spectrum acid test (npm `csv-spectrum`): every CSV file read whole and one byte at a
 * time must equal its JSON twin.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { records } from './test-helpers.ts';

const root = dirname(createRequire(import.meta.url).resolve('csv-spectrum/package.json'));
const names = readdirSync(join(root, 'csvs')).map((f) => f.replace(/\.csv$/, ''));

describe('csv-spectrum', () => {
  it('has the whole suite', () => {
    assert.ok(names.length >= 12, `found ${names.length} files`);
  });
  for (const name of names) {
    it(name, () => {
      const csv = readFileSync(join(root, 'csvs', `${name}.csv`));
      const parsed: unknown = JSON.parse(readFileSync(join(root, 'json', `${name}.json`), 'utf8'));
      const expected = (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, string>[];
      if (name === 'location_coordinates') {
        // Upstream defect: the JSON twin anonymised the phone number the CSV still holds
        // (2095257564 vs 1234567890). Every other field is compared as is.
        assert.equal(expected[0]!['Contact Phone Number'], '1234567890');
        expected[0]!['Contact Phone Number'] = '2095257564';
      }
      assert.deepEqual(records(csv), expected);
      assert.deepEqual(records(csv, {}, 1), expected);
    });
  }
});
