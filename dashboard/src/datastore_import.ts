// Upstream's backup zip to POST /api/v1/import/datastore (the body is the zip itself, so not
// through api.request, which sends JSON), and the report it answers with, for the page.

import { ApiError } from './api';

export interface ImportCounts {
  added: number;
  present: number;
  refused: number;
}

export interface ImportProblem {
  item: string;
  field?: string;
  reason: string;
}

export interface ImportReport {
  layout: string;
  dry_run: boolean;
  settings: string;
  tags: ImportCounts;
  watches: ImportCounts;
  snapshots: ImportCounts;
  problems: ImportProblem[];
}

/** Sends the zip; the server's own message on an error. */
export async function uploadBackupZip(file: Blob, dryRun: boolean, signal?: AbortSignal): Promise<ImportReport> {
  const res = await fetch(`/api/v1/import/datastore?dry_run=${dryRun ? 'true' : 'false'}`, {
    method: 'POST',
    headers: { 'X-Changewatch-UI': '1', 'content-type': 'application/zip', Accept: 'application/json' },
    body: file,
    credentials: 'same-origin',
    cache: 'no-store',
    signal,
  });
  const text = await res.text();
  if (!res.ok) {
    let message = `${res.status} ${res.statusText || 'request failed'}`.trim();
    try {
      const data: unknown = JSON.parse(text);
      if (typeof data === 'string' && data) message = data;
      else if (data && typeof data === 'object' && typeof (data as { message?: unknown }).message === 'string') {
        message = (data as { message: string }).message;
      }
    } catch {
      /* not JSON: keep the status line */
    }
    throw new ApiError(res.status, message);
  }
  return JSON.parse(text) as ImportReport;
}

/** The counts as sentences, for a person. */
export function reportSummary(r: ImportReport): string[] {
  const verb = r.dry_run ? 'would be imported' : 'imported';
  const line = (name: string, c: ImportCounts): string =>
    `${name}: ${c.added} ${verb}, ${c.present} already here, ${c.refused} not imported`;
  return [
    `${r.dry_run ? 'Dry run' : 'Import'} of a ${r.layout} datastore`,
    `Settings: ${r.settings}`,
    line('Tags', r.tags),
    line('Watches', r.watches),
    line('Snapshots', r.snapshots),
  ];
}

/** One line per problem: what, which field, why. */
export function problemLine(p: ImportProblem): string {
  return p.field ? `${p.item} — ${p.field}: ${p.reason}` : `${p.item}: ${p.reason}`;
}
