// The Import page's requests (POST /ui/import/{urls,distill,xlsx}) and the pure parts of the
// page: the .xlsx mapping as query parameters, the lines a URL list leaves behind, one row of
// the report as a sentence.

import { requestJson } from './api';

export interface ImportRow {
  row: number;
  url: string;
  status: 'imported' | 'skipped';
  uuid?: string;
  reason?: string;
  /** A bound stopped the reading here: this row and all after it were not read. */
  rest?: boolean;
}

export interface ImportResult {
  message: string;
  imported: number;
  skipped: number;
  rows: ImportRow[];
}

/** Upstream's column types for a custom .xlsx mapping. */
export const COLUMN_TYPES = [
  { value: '', label: '-- none --' },
  { value: 'url', label: 'URL' },
  { value: 'title', label: 'Title' },
  { value: 'include_filters', label: 'CSS/xPath filter' },
  { value: 'tag', label: 'Group / Tag name(s)' },
  { value: 'interval_minutes', label: 'Recheck time (minutes)' },
] as const;

export interface ColumnChoice {
  /** The column number as typed (from 1). */
  column: string;
  type: string;
}

/**
 * The query string for POST /ui/import/xlsx, or an error for the person: a custom mapping needs
 * a URL column, column numbers from 1 to 16384, each once. Rows without a type are unused.
 */
export function xlsxQuery(mapping: 'wachete' | 'custom', cols: readonly ColumnChoice[]): { query: string } | { error: string } {
  const q = new URLSearchParams({ mapping });
  if (mapping === 'wachete') return { query: q.toString() };
  const seen = new Set<number>();
  for (const c of cols) {
    if (c.type === '' && c.column.trim() === '') continue;
    if (c.type === '') return { error: `Column ${c.column.trim()}: choose its type` };
    const n = Number(c.column.trim());
    if (!Number.isInteger(n) || n < 1 || n > 16384) return { error: `"${c.column}" is not a column number (1 to 16384)` };
    if (seen.has(n)) return { error: `Column ${n} is mapped twice` };
    seen.add(n);
    q.append(`col_${n}`, c.type);
  }
  if (!cols.some((c) => c.type === 'url' && c.column.trim() !== '')) return { error: 'A custom mapping needs a column of type URL' };
  return { query: q.toString() };
}

/**
 * The lines of a URL list whose rows were skipped, to try again (as upstream leaves them), and
 * every line from a `rest` row on.
 */
export function remainingLines(text: string, rows: readonly ImportRow[]): string {
  const lines = text.split('\n');
  return rows
    .filter((r) => r.status === 'skipped')
    .flatMap((r) => (r.rest ? lines.slice(r.row - 1) : [lines[r.row - 1] ?? r.url]))
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join('\n');
}

/** One row of the report, for a person. */
export function rowLine(r: ImportRow): string {
  const what = r.url ? `Row ${r.row} (${r.url})` : `Row ${r.row}`;
  return r.status === 'imported' ? `${what}: imported` : `${what}: skipped — ${r.reason ?? 'no reason given'}`;
}

/** Sends one import; the server's own message on an error. */
export function postImport(path: string, body: BodyInit, contentType: string, signal?: AbortSignal): Promise<ImportResult> {
  return requestJson<ImportResult>(path, { method: 'POST', raw: { body, type: contentType }, signal });
}
