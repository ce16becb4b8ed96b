// The settings page's backup download: GET /api/v1/backup with the UI header (an <a href>
// cannot send it), saved under the name the server gives (docs/BACKUP.md).

import { request } from './api';

/** The file name from a Content-Disposition header, or one made from `now` (UTC). Only a
 *  plain name is taken: no path separators, nothing but the server's own characters. */
export function backupFileName(disposition: string | null, now: Date): string {
  const m = /filename="([A-Za-z0-9._-]+)"/.exec(disposition ?? '');
  if (m?.[1]) return m[1];
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `changewatch-backup-${stamp}.jsonl.zst`;
}

/** Fetches a backup and hands it to the browser as a download. */
export async function downloadBackup(): Promise<string> {
  const res = await request('/api/v1/backup');
  const name = backupFileName(res.headers.get('content-disposition'), new Date());
  const url = URL.createObjectURL(await res.blob());
  try {
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
  } finally {
    // The click has started the download; the blob may go once the browser took it.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
  return name;
}
