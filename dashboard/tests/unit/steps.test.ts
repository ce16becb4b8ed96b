// The browser-steps editor's pure logic: the operations table against the server's, which
// inputs a row uses, what a row saves, and moving rows.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  BROWSER_STEP_OPERATIONS,
  STEP_PLACEHOLDER,
  findOperation,
  moveItem,
  normalizeOperation,
  stepBody,
  stepNeeds,
} from '../../src/steps';

test('the operations are the server\'s ACTIONS: same names, order and inputs', () => {
  // This file runs from dashboard/.test-build/: the Rust sources are two levels up.
  const rust = readFileSync(new URL('../../crates/core/src/model/steps.rs', import.meta.url), 'utf8');
  const table = rust.slice(rust.indexOf('const ACTIONS'), rust.indexOf('];', rust.indexOf('const ACTIONS')));
  const actions = Array.from(
    table.matchAll(/\(\s*BrowserAction::\w+,\s*"((?:[^"\\]|\\.)*)",\s*(true|false),\s*(true|false),?\s*\)/g),
    (m) => ({ name: m[1], selector: m[2] === 'true', value: m[3] === 'true' }),
  );
  assert.ok(actions.length >= 20, `parsed ACTIONS from steps.rs (${actions.length} entries)`);
  assert.deepEqual(
    BROWSER_STEP_OPERATIONS.map(({ name, selector, value }) => ({ name, selector, value })),
    actions,
  );
  assert.ok(rust.includes(`BROWSER_STEP_PLACEHOLDER: &str = "${STEP_PLACEHOLDER}"`), 'the same placeholder');
});

test('names match as the server matches them; unknown names keep both inputs', () => {
  assert.equal(normalizeOperation('<select> by option text'), '_select_by_option_text');
  assert.equal(findOperation('click-ELEMENT')?.name, 'Click element');
  assert.equal(findOperation('Fly to the moon'), undefined);
  assert.deepEqual(stepNeeds('Click element'), { selector: true, value: false });
  assert.deepEqual(stepNeeds('Click X,Y'), { selector: false, value: true });
  assert.deepEqual(stepNeeds('enter_text_in_field'), { selector: true, value: true });
  assert.deepEqual(stepNeeds('Press Enter'), { selector: false, value: false });
  assert.deepEqual(stepNeeds(STEP_PLACEHOLDER), { selector: false, value: false });
  assert.deepEqual(stepNeeds('Fly to the moon'), { selector: true, value: true });
});

test('a row saves all three keys: used inputs as typed, unused ones null', () => {
  assert.deepEqual(stepBody('Enter text in field', '#q', 'hello'), {
    operation: 'Enter text in field',
    selector: '#q',
    optional_value: 'hello',
  });
  // An empty value is sent as typed (clearing a field); the server judges it.
  assert.deepEqual(stepBody('Enter text in field', '#q', ''), {
    operation: 'Enter text in field',
    selector: '#q',
    optional_value: '',
  });
  // Text left in a hidden input is not saved.
  assert.deepEqual(stepBody('Click element', '#go', 'stale'), {
    operation: 'Click element',
    selector: '#go',
    optional_value: null,
  });
  assert.deepEqual(stepBody('Click X,Y', 'stale', ' 100, 90 '), {
    operation: 'Click X,Y',
    selector: null,
    optional_value: ' 100, 90 ',
  });
  assert.deepEqual(stepBody(STEP_PLACEHOLDER, 'a', 'b'), { operation: STEP_PLACEHOLDER, selector: null, optional_value: null });
  assert.deepEqual(stepBody('Fly to the moon', 'a', 'b'), { operation: 'Fly to the moon', selector: 'a', optional_value: 'b' });
});

test('moving a row up or down, clamped at the ends', () => {
  assert.deepEqual(moveItem(['a', 'b', 'c'], 1, -1), ['b', 'a', 'c']);
  assert.deepEqual(moveItem(['a', 'b', 'c'], 1, 1), ['a', 'c', 'b']);
  assert.deepEqual(moveItem(['a', 'b', 'c'], 0, -1), ['a', 'b', 'c']);
  assert.deepEqual(moveItem(['a', 'b', 'c'], 2, 1), ['a', 'b', 'c']);
  assert.deepEqual(moveItem(['a', 'b', 'c'], 5, 1), ['a', 'b', 'c']);
  const list = ['a', 'b'];
  moveItem(list, 0, 1);
  assert.deepEqual(list, ['a', 'b'], 'the input is not changed');
});
