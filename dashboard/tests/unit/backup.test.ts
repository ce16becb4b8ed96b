// The name a downloaded backup is saved under.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { backupFileName } from '../../src/backup';

test('the server names the file; a name with a path or odd characters is not taken', () => {
  const now = new Date(Date.UTC(2026, 11, 6, 22, 5, 9));
  assert.equal(
    backupFileName('attachment; filename="changewatch-backup-20261206-220509.jsonl.zst"', now),
    'changewatch-backup-20261206-220509.jsonl.zst',
  );
  assert.equal(backupFileName(null, now), 'changewatch-backup-20261206-220509.jsonl.zst');
  assert.equal(backupFileName('attachment; filename="../../etc/passwd"', now), 'changewatch-backup-20261206-220509.jsonl.zst');
});
