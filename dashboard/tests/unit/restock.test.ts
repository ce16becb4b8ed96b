// The restock cell of the list and the edit page's number fields: upstream's row template's
// rules (labels, the signed one-place percentage, nothing for other processors).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { optionalNumber, priceChangePercent, restockCell } from '../../src/restock';

const r = (in_stock: boolean | null, price: number | null, last_price: number | null, currency: string | null = 'EUR') => ({
  processor: 'restock_diff',
  restock: { in_stock, price, currency, last_price },
});

test('a row of another processor has no restock cell', () => {
  assert.equal(restockCell({ processor: 'text_json_diff', restock: undefined }), null);
  assert.equal(restockCell({ processor: 'text_json_diff', restock: r(true, 1, 1).restock }), null);
});

test('stock labels are upstream\'s, "No information" before anything was found', () => {
  assert.equal(restockCell(r(true, null, null), 'en')?.stockLabel, 'In stock');
  assert.equal(restockCell(r(false, null, null), 'en')?.stockClass, 'not-in-stock');
  const none = restockCell({ processor: 'restock_diff', restock: undefined }, 'en');
  assert.equal(none?.stockLabel, 'No information');
  assert.equal(none?.stockClass, 'error');
  assert.equal(none?.price, '');
});

test('the price carries its currency and the move since the previous check', () => {
  const down = restockCell(r(true, 90, 100), 'en');
  assert.equal(down?.price, '90 EUR');
  assert.equal(down?.change, '▼ -10%');
  assert.equal(down?.changeClass, 'down');
  assert.equal(down?.changeTitle, 'Price change since previous price (100 EUR)');
  const up = restockCell(r(true, 1234.5, 1000, null), 'en');
  assert.equal(up?.price, '1,234.5');
  assert.equal(up?.change, '▲ +23.5%');
  // No move, or no previous price: no marker.
  assert.equal(restockCell(r(true, 10, 10), 'en')?.change, '');
  assert.equal(restockCell(r(true, 10, null), 'en')?.change, '');
  assert.equal(restockCell(r(true, 10, 0), 'en')?.change, '');
});

test('the percentage is rounded to one place as upstream rounds it', () => {
  assert.equal(priceChangePercent({ in_stock: true, price: 105.26, last_price: 100, currency: null }), 5.3);
  assert.equal(priceChangePercent({ in_stock: true, price: 100.01, last_price: 100, currency: null }), null);
});

test('an empty number field is no limit; text is an error naming the field', () => {
  assert.equal(optionalNumber('  ', 'Min'), null);
  assert.equal(optionalNumber('12.5', 'Min'), 12.5);
  assert.throws(() => optionalNumber('abc', 'Min'), /Min: "abc" is not a number/);
});
