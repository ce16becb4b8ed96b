// The restock_diff processor in the dashboard: the list's "Restock & Price" cell, as upstream's
// row template draws it, and the edit page's settings (processor_config_restock_diff).

import type { RestockState, WatchRow } from './types';

export const PROCESSORS = [
  { value: 'text_json_diff', label: 'Webpage Text/HTML, JSON and PDF changes' },
  { value: 'restock_diff', label: 'Re-stock & Price detection for pages with a SINGLE product' },
] as const;

export const IN_STOCK_PROCESSING = [
  { value: 'in_stock_only', label: 'In Stock only (Out Of Stock -> In Stock only)' },
  { value: 'all_changes', label: 'Any availability changes' },
  { value: 'off', label: "Off, don't follow availability/restock" },
] as const;

/** `processor_config_restock_diff` as the API takes and returns it. */
export interface RestockConfig {
  in_stock_processing: string;
  follow_price_changes: boolean;
  price_change_min: number | null;
  price_change_max: number | null;
  price_change_threshold_percent: number | null;
}

/** Upstream's defaults (the API answers them for a watch that never set its own). */
export const DEFAULT_RESTOCK_CONFIG: RestockConfig = {
  in_stock_processing: 'in_stock_only',
  follow_price_changes: true,
  price_change_min: null,
  price_change_max: null,
  price_change_threshold_percent: null,
};

export interface RestockCell {
  /** 'in-stock' | 'not-in-stock' | 'error' (upstream's label classes). */
  stockClass: string;
  stockLabel: string;
  /** '' when there is no price to show. */
  price: string;
  /** Signed % since the previous check's price, '' when none (upstream's ▲/▼ marker). */
  change: string;
  changeClass: '' | 'up' | 'down';
  changeTitle: string;
}

/** Upstream's `get_price_change_percent`: rounded to one place; null without a previous price
 * or when the price did not move. */
export function priceChangePercent(r: RestockState): number | null {
  if (r.price === null || r.last_price === null || r.last_price === 0) return null;
  const pct = Math.round(((r.price - r.last_price) / r.last_price) * 1000) / 10;
  return pct === 0 ? null : pct;
}

function money(n: number, currency: string | null, locale?: string): string {
  const text = n.toLocaleString(locale, { maximumFractionDigits: 6 });
  return currency ? `${text} ${currency}` : text;
}

/** The cell of a restock row, null for a row of another processor. */
export function restockCell(row: Pick<WatchRow, 'processor' | 'restock'>, locale?: string): RestockCell | null {
  if (row.processor !== 'restock_diff') return null;
  const r = row.restock ?? { in_stock: null, price: null, currency: null, last_price: null };
  const known = r.in_stock !== null;
  const cell: RestockCell = {
    stockClass: known ? (r.in_stock ? 'in-stock' : 'not-in-stock') : 'error',
    stockLabel: known ? (r.in_stock ? 'In stock' : 'Not in stock') : 'No information',
    price: '',
    change: '',
    changeClass: '',
    changeTitle: '',
  };
  if (r.price !== null) {
    cell.price = money(r.price, r.currency, locale);
    const pct = priceChangePercent(r);
    if (pct !== null && r.last_price !== null) {
      cell.change = pct < 0 ? `▼ ${pct}%` : `▲ +${pct}%`;
      cell.changeClass = pct < 0 ? 'down' : 'up';
      cell.changeTitle = `Price change since previous price (${money(r.last_price, r.currency, locale)})`;
    }
  }
  return cell;
}

/** A number field's value as the API takes it: '' is null (no limit), anything else a number or
 * an error naming the field. */
export function optionalNumber(value: string, label: string): number | null {
  const v = value.trim();
  if (v === '') return null;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${label}: "${v}" is not a number`);
  return n;
}
