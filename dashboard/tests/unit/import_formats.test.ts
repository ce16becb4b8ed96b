// The Import page (#/import): its route, the .xlsx mapping as query parameters, what a URL list
// leaves in its box, and how a row of the report reads.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { remainingLines, rowLine, xlsxQuery } from '../../src/import_formats';
import { parseRoute } from '../../src/router';

test('the import page has its own route', () => {
  assert.deepEqual(parseRoute('#/import'), { name: 'import' });
  assert.deepEqual(parseRoute('#/import/x'), { name: 'notfound' });
});

test('a Wachete mapping takes no columns; a custom one needs a URL column', () => {
  assert.deepEqual(xlsxQuery('wachete', [{ column: '1', type: 'url' }]), { query: 'mapping=wachete' });
  assert.deepEqual(
    xlsxQuery('custom', [
      { column: '2', type: 'title' },
      { column: ' 1 ', type: 'url' },
      { column: '', type: '' },
    ]),
    { query: 'mapping=custom&col_2=title&col_1=url' },
  );
  assert.deepEqual(xlsxQuery('custom', [{ column: '2', type: 'title' }]), { error: 'A custom mapping needs a column of type URL' });
  assert.deepEqual(xlsxQuery('custom', [{ column: '0', type: 'url' }]), { error: '"0" is not a column number (1 to 16384)' });
  assert.deepEqual(xlsxQuery('custom', [{ column: '1.5', type: 'url' }]), { error: '"1.5" is not a column number (1 to 16384)' });
  assert.deepEqual(
    xlsxQuery('custom', [
      { column: '1', type: 'url' },
      { column: '1', type: 'tag' },
    ]),
    { error: 'Column 1 is mapped twice' },
  );
  assert.deepEqual(xlsxQuery('custom', [{ column: '3', type: '' }]), { error: 'Column 3: choose its type' });
});

test('the skipped lines of a URL list stay, tags and all', () => {
  const text = 'https://a.example/ t1\nnope\n\nhttp:// spaced\n';
  const rows = [
    { row: 1, url: 'https://a.example/', status: 'imported' as const, uuid: 'u1' },
    { row: 2, url: 'nope', status: 'skipped' as const, reason: 'Not a URL' },
    { row: 4, url: 'http://', status: 'skipped' as const, reason: 'Invalid or unsupported URL' },
  ];
  assert.equal(remainingLines(text, rows), 'nope\nhttp:// spaced');
});

test('from a row where a bound stopped the reading, every line stays', () => {
  const text = 'https://a.example/\nhttps://b.example/\n\nhttps://c.example/ t\n';
  const rows = [
    { row: 1, url: 'https://a.example/', status: 'imported' as const, uuid: 'u1' },
    { row: 2, url: 'https://b.example/', status: 'skipped' as const, reason: 'Only the first…', rest: true },
  ];
  assert.equal(remainingLines(text, rows), 'https://b.example/\nhttps://c.example/ t');
});

test('a row of the report says what happened', () => {
  assert.equal(rowLine({ row: 2, url: 'https://a.example/', status: 'imported', uuid: 'u' }), 'Row 2 (https://a.example/): imported');
  assert.equal(rowLine({ row: 5, url: '', status: 'skipped', reason: 'No URL in this row' }), 'Row 5: skipped — No URL in this row');
});
