// The conditions editor's pure logic: its tables against the server's, and what it saves.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { CONDITION_FIELDS, CONDITION_OPERATORS, MATCH_LOGIC, conditionRows } from '../../src/conditions';

/** `(value, label)` pairs of a `const NAME: &[(&str, &str)]` table in conditions.rs. */
function rustTable(rust: string, name: string): { value: string; label: string }[] {
  const start = rust.indexOf(`pub const ${name}`);
  const table = rust.slice(start, rust.indexOf('];', start));
  return Array.from(table.matchAll(/\(\s*"((?:[^"\\]|\\.)*)",\s*"((?:[^"\\]|\\.)*)",?\s*\)/g), (m) => ({
    value: m[1],
    label: m[2],
  }));
}

test('the fields and operators are the server\'s: same values, labels and order', () => {
  // This file runs from dashboard/.test-build/: the Rust sources are two levels up.
  const rust = readFileSync(new URL('../../crates/core/src/conditions.rs', import.meta.url), 'utf8');
  const fields = rustTable(rust, 'FIELDS');
  const operators = rustTable(rust, 'OPERATORS');
  assert.ok(fields.length >= 5 && operators.length >= 14, `parsed ${fields.length} fields, ${operators.length} operators`);
  assert.deepEqual([...CONDITION_FIELDS], fields);
  assert.deepEqual([...CONDITION_OPERATORS], operators);
  assert.deepEqual(
    MATCH_LOGIC.map((m) => m.value),
    ['ALL', 'ANY'],
  );
});

test('a wholly empty row is no rule; a partly filled one is sent for the server to judge', () => {
  assert.deepEqual(
    conditionRows([
      { field: '', operator: '', value: '  ' },
      { field: 'extracted_number', operator: '<', value: '100' },
      { field: 'page_filtered_text', operator: '', value: '' },
    ]),
    [
      { field: 'extracted_number', operator: '<', value: '100' },
      { field: 'page_filtered_text', operator: '', value: '' },
    ],
  );
});
