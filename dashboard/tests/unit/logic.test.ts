// Unit tests of the dashboard's pure logic: no browser, no server. Run by `npm run test:unit`
// (tests/run-unit.mjs bundles them with esbuild and runs them with `node --test`).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseRoute } from '../../src/router';
import { displayName, WatchStore } from '../../src/store';
import { learnStyle, timeago } from '../../src/time';
import { canonical, changedFields } from '../../src/util';

test('routes: known pages, uuids of a sane shape, anything else is not found', () => {
  assert.deepEqual(parseRoute(''), { name: 'list' });
  assert.deepEqual(parseRoute('#/settings'), { name: 'settings' });
  assert.deepEqual(parseRoute('#/settings/notification-log'), { name: 'notificationLog' });
  assert.deepEqual(parseRoute('#/edit/0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11?x=1'), {
    name: 'edit',
    uuid: '0b1e4b0a-5b1e-4f7e-9f3e-7d8f7f4b2a11',
  });
  assert.deepEqual(parseRoute('#/edit/<script>'), { name: 'notfound' });
  assert.deepEqual(parseRoute('#/history/a/b'), { name: 'notfound' });
  assert.deepEqual(parseRoute('#/nope'), { name: 'notfound' });
});

test('timeago follows the server wording, long and short', () => {
  const now = 1_000_000;
  assert.equal(timeago(0, now), 'Not yet');
  assert.equal(timeago(now - 5, now), 'just now');
  assert.equal(timeago(now - 60, now), '1 minute ago');
  assert.equal(timeago(now - 3 * 3600, now), '3 hours ago');
  assert.equal(timeago(now + 120, now), 'in 2 minutes');
  learnStyle('3m ago');
  assert.equal(timeago(now - 180, now), '3m ago');
  learnStyle('5 minutes ago');
  assert.equal(timeago(now - 180, now), '3 minutes ago');
});

test('form diffs compare values, not key order', () => {
  assert.equal(canonical({ b: 1, a: [2, { d: 1, c: 2 }] }), canonical({ a: [2, { c: 2, d: 1 }], b: 1 }));
  assert.deepEqual(changedFields({ a: 1, b: { x: 1, y: 2 }, c: 'z' }, { a: 1, b: { y: 2, x: 1 }, c: 'y' }), { c: 'z' });
});

test('a row shows its title, else the page title, else the URL', () => {
  assert.equal(displayName({ title: 'T', page_title: 'P', url: 'u' }), 'T');
  assert.equal(displayName({ title: null, page_title: 'P', url: 'u' }), 'P');
  assert.equal(displayName({ title: '', page_title: null, url: 'u' }), 'u');
  assert.equal(displayName({ title: '', page_title: null, url: 'u/{{x}}', link: 'u/1' }), 'u/1', 'the rendered link');
  assert.equal(displayName({ title: '', page_title: null, url: 'u', link: 'DISABLED' }), 'u');
  // The page title only when the settings or the watch say so, as upstream's row template.
  assert.equal(displayName({ title: null, page_title: 'P', url: 'u', link: 'l' }, false), 'l');
  assert.equal(displayName({ title: null, page_title: 'P', url: 'u', use_page_title_in_list: true }, false), 'P');
  assert.equal(displayName({ title: null, page_title: 'P', url: 'u', use_page_title_in_list: false }, true), 'P');
});

test("a socket row without a templated URL's link keeps the list's rendered one", () => {
  const store = new WatchStore();
  const url = 'https://example.com/{{ today }}';
  store.applyUpdate({ uuid: 'w1', url, link: 'https://example.com/2026' });
  store.applyUpdate({ uuid: 'w1', url, checking_now: true });
  assert.equal(store.rows.get('w1')?.link, 'https://example.com/2026');
  // The URL itself changed: the old rendering no longer applies.
  store.applyUpdate({ uuid: 'w1', url: 'https://example.com/{{ now }}' });
  assert.equal(store.rows.get('w1')?.link, '');
});

test('socket updates merge into rows; a deleted watch never comes back', () => {
  const store = new WatchStore();
  const events: string[] = [];
  store.subscribe((e) => events.push(e.type + ('added' in e && e.added ? '+' : '')));
  store.applyUpdate({ uuid: 'w1', url: 'https://example.com/', title: 'A', paused: false, last_error: '' });
  assert.equal(store.rows.get('w1')?.title, 'A');
  assert.equal(store.rows.get('w1')?.last_error, false, 'an empty error is no error');
  assert.deepEqual(store.order, ['w1']);
  store.applyUpdate({ uuid: 'w1', paused: true, checking_now: true, last_changed_text: 'Not yet' });
  assert.equal(store.rows.get('w1')?.paused, true);
  assert.equal(store.rows.get('w1')?.last_changed, 0, '"Not yet" means no change recorded');
  assert.equal(store.rows.get('w1')?.title, 'A', 'fields not in the payload are kept');
  // Wrongly typed fields from the wire are ignored, not merged.
  store.applyUpdate({ uuid: 'w1', paused: 'yes', history_n: 'many', tags: ['t', 3] });
  assert.equal(store.rows.get('w1')?.paused, true);
  assert.deepEqual(store.rows.get('w1')?.tags, ['t']);
  store.remove('w1');
  store.applyUpdate({ uuid: 'w1', url: 'https://example.com/', title: 'late' });
  assert.equal(store.rows.has('w1'), false);
  assert.deepEqual(events, ['row+', 'row', 'row', 'removed']);
  store.setCounters({ queue_size: 3, count_errors: Number.NaN });
  assert.equal(store.counters.queue_size, 3);
  assert.equal(store.counters.count_errors, 0);
});

test('a restock row keeps its processor and stock state; odd values read as unknown', () => {
  const store = new WatchStore();
  store.applyUpdate({
    uuid: 'w1',
    url: 'https://shop.example/kettle',
    processor: 'restock_diff',
    restock: { in_stock: true, price: 9.5, currency: 'EUR', last_price: 10 },
  });
  assert.equal(store.rows.get('w1')?.processor, 'restock_diff');
  assert.deepEqual(store.rows.get('w1')?.restock, { in_stock: true, price: 9.5, currency: 'EUR', last_price: 10 });
  store.applyUpdate({ uuid: 'w1', restock: { in_stock: 'yes', price: '9', currency: 3, __proto__: { x: 1 } } });
  assert.deepEqual(store.rows.get('w1')?.restock, { in_stock: null, price: null, currency: null, last_price: null });
  store.applyUpdate({ uuid: 'w1', restock: 'nope' });
  assert.equal(store.rows.get('w1')?.restock?.in_stock, null, 'a non-object leaves the last state');
});
