// Relative times ("5 minutes ago"), recomputed locally from epoch seconds so the list stays
// current without asking the server. The wording follows the server's own texts
// (last_checked_text / last_changed_text) so a local refresh does not change the phrasing.

import { serverNow } from './api';

// Each step divides the amount to reach the next unit: s -> min -> h -> d -> week -> month -> year.
const STEPS = [60, 60, 24, 7, 365 / 7 / 12, 12];
const LONG_UNITS = ['second', 'minute', 'hour', 'day', 'week', 'month', 'year'];
const SHORT_UNITS = ['s', 'm', 'h', 'd', 'w', 'mo', 'yr'];

export type TimeagoStyle = 'long' | 'short';
let style: TimeagoStyle = 'long';

/**
 * The server may be configured for short texts ("3m ago"); adopt that style when a server text
 * shows it, so locally refreshed texts match.
 */
export function learnStyle(serverText: string | undefined): void {
  if (!serverText) return;
  if (/^(\d+(s|m|h|d|w|mo|yr) ago|in \d+(s|m|h|d|w|mo|yr))$/.test(serverText)) style = 'short';
  else if (/ (second|minute|hour|day|week|month|year)s? ago$/.test(serverText)) style = 'long';
}

/** "Not yet" for 0, else "just now" / "12 seconds ago" / "1 minute ago" / "3 hours ago" ... */
export function timeago(epoch: number, now = serverNow()): string {
  if (!epoch) return 'Not yet';
  const diff = now - epoch;
  const future = diff < 0;
  let amount = Math.abs(diff);
  let unit = 0;
  while (unit < STEPS.length && amount >= (STEPS[unit] ?? Infinity)) {
    amount /= STEPS[unit] ?? 1;
    unit++;
  }
  const count = Math.floor(amount);
  if (unit === 0 && count <= 9) return future ? (style === 'short' ? 'right now' : 'a while') : 'just now';
  if (style === 'short') {
    const u = SHORT_UNITS[unit] ?? '';
    return future ? `in ${count}${u}` : `${count}${u} ago`;
  }
  const word = `${LONG_UNITS[unit] ?? ''}${count === 1 ? '' : 's'}`;
  return future ? `in ${count} ${word}` : `${count} ${word} ago`;
}

/** Local date and time of an epoch, for tooltips and version pickers. */
export function formatDate(epoch: number): string {
  if (!epoch) return '';
  return new Date(epoch * 1000).toLocaleString();
}
